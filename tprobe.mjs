const t0 = performance.now();
const command = (await import('./dist/commands/diff.js')).default;
const t1 = performance.now();
command.id = 'diff';
await command.run(process.argv.slice(2), { bin: 'viva' });
const t2 = performance.now();
process.on('exit', () => { const t3 = performance.now(); process.stderr.write(`boot ${t0.toFixed(0)} import ${(t1-t0).toFixed(0)} run ${(t2-t1).toFixed(0)} exit ${(t3-t2).toFixed(0)}\n`); });
