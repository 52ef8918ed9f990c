/**
 * The web view's client bundle (built by esbuild into dist/web/app.js with its CSS in dist/web/app.css): the
 * namespace filter that narrows the branch tree as one types, and the storage charts (uPlot). The pages work without
 * it; it only adds to them. It never builds markup from strings: text goes in through textContent.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';

interface ChartData {
  names: string[];
  series: Array<{ label: string; values: number[] }>;
}

const COLORS = ['#4c78a8', '#f58518', '#54a24b', '#b279a2'];

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

function drawChart(el: HTMLElement): void {
  const data = JSON.parse(el.dataset.chart ?? 'null') as ChartData | null;
  if (!data || data.names.length === 0) return;
  const n = data.series.length;
  const bars = uPlot.paths.bars!;
  const opts: uPlot.Options = {
    title: el.dataset.title ?? '',
    width: Math.max(320, Math.min(1100, el.clientWidth || 900)),
    height: 280,
    scales: { x: { time: false, range: [-0.5, data.names.length - 0.5] } },
    axes: [
      { values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? (data.names[t] ?? '') : '')), rotate: 0, size: 40 },
      { values: (_u, ticks) => ticks.map((t) => bytes(t)), size: 80 },
    ],
    series: [
      { label: 'image', value: (_u: uPlot, v: number | null) => (v === null ? '' : (data.names[v] ?? '')) },
      ...data.series.map((s, i) => ({
        label: s.label, fill: COLORS[i % COLORS.length], stroke: COLORS[i % COLORS.length],
        paths: bars({ size: [0.8 / n, 60], align: 0, disp: { x0: { unit: 2, values: () => data.names.map((_, j) => j - 0.4 + (0.8 / n) * i) } } as never }),
        value: (_u: uPlot, v: number | null) => (v === null ? '' : bytes(v)),
        points: { show: false },
      })),
    ],
    legend: { show: true },
  };
  const xs = data.names.map((_, i) => i);
  new uPlot(opts, [xs, ...data.series.map((s) => s.values)] as uPlot.AlignedData, el);
}

function filterTree(input: HTMLInputElement): void {
  const tree = document.getElementById('branches');
  if (!tree) return;
  const f = input.value.trim().toLowerCase();
  for (const li of Array.from(tree.querySelectorAll<HTMLElement>('li.ref'))) {
    const name = li.dataset.name ?? '';
    li.hidden = f !== '' && !name.toLowerCase().includes(f);
  }
  // A folder whose branches are all hidden is hidden too.
  for (const dir of Array.from(tree.querySelectorAll<HTMLElement>('li.dir')).reverse()) {
    dir.hidden = f !== '' && dir.querySelector('li.ref:not([hidden])') === null;
  }
}

function start(): void {
  for (const el of Array.from(document.querySelectorAll<HTMLElement>('.chart[data-chart]'))) drawChart(el);
  const filter = document.getElementById('filter');
  if (filter instanceof HTMLInputElement) filter.addEventListener('input', () => filterTree(filter));
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
