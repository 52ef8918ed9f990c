/**
 * The derivations page: which images were made from which (base → clones → installs → merges) as a picture, laid
 * out on the server by dagre and sent as SVG; each node links to its image. The same graph as `viva derivations`.
 */
import dagre from '@dagrejs/dagre';
import { derivationGraph, readDerivation, type DerivationGraph } from '../ops/derivations.js';
import { refsByOid } from '../ops/log-entry.js';
import { readCommit } from '../store/typed.js';
import type { Repository } from '../store/repository.js';
import { html, type SafeHtml } from './html.js';
import { page, shortOid } from './layout.js';
import { commitUrl, logUrl } from './url.js';

/** Nodes drawn at most (the table below the picture lists every edge). */
export const MAX_GRAPH_NODES = 400;

/** The derivation graph (`derivations --json`) and its laid-out SVG. */
export interface DerivationsData {
  graph: DerivationGraph;
  svg?: SafeHtml;
  /** Nodes left out of the picture (beyond MAX_GRAPH_NODES). */
  omitted: number;
}

function short(ref: string): string {
  return ref.replace(/^refs\/(heads|tags)\//, '');
}

interface GraphNode { id: string; label: string; href: string; kind: 'branch' | 'commit' }

/**
 * The inputs of each merged branch (a merge derivation at its head): for every merged commit, the branch whose head
 * it is, else the commit itself — so that a merge is drawn with an arrow from each side.
 */
export type MergeInputs = Map<string, Array<{ ref?: string; commit: string }>>;

function mergeInputs(repo: Repository, g: DerivationGraph): MergeInputs {
  const out: MergeInputs = new Map();
  let refs: Map<string, string[]> | undefined;
  for (const e of g.edges) {
    const dv = readDerivation(e.commit, readCommit(repo.objects, e.commit));
    if (dv?.kind !== 'merge') continue;
    refs ??= refsByOid(repo);
    out.set(e.ref, dv.bases.map((b) => {
      const ref = refs!.get(b.commit)?.find((r) => r.startsWith('refs/heads/') && r !== e.ref);
      return { commit: b.commit, ...(ref ? { ref } : {}) };
    }));
  }
  return out;
}

/** The graph's nodes and edges: derived branches, the branches (or commits) they were made from. */
function graphParts(g: DerivationGraph, merges: MergeInputs): { nodes: Map<string, GraphNode>; edges: Array<{ from: string; to: string; label: string; behind: number }> } {
  const nodes = new Map<string, GraphNode>();
  const edges: Array<{ from: string; to: string; label: string; behind: number }> = [];
  const branch = (ref: string) => { if (!nodes.has(ref)) nodes.set(ref, { id: ref, label: short(ref), href: logUrl(short(ref)), kind: 'branch' }); return ref; };
  const commitNode = (oid: string) => {
    const id = `commit:${oid}`;
    if (!nodes.has(id)) nodes.set(id, { id, label: shortOid(oid), href: commitUrl(oid), kind: 'commit' });
    return id;
  };
  for (const e of g.edges) {
    const to = branch(e.ref);
    const inputs = merges.get(e.ref);
    if (inputs) {
      for (const i of inputs) edges.push({ from: i.ref ? branch(i.ref) : commitNode(i.commit), to, label: 'merge', behind: 0 });
      continue;
    }
    const holder = e.baseRefs[0];
    let from: string;
    if (holder) from = branch(holder.ref);
    else from = commitNode(e.base);
    edges.push({ from, to, label: e.summary, behind: holder?.behind ?? 0 });
  }
  return { nodes, edges };
}

const CHAR = 7.2;
const NODE_H = 30;

/** Lays the graph out with dagre (left to right) and draws it as SVG markup (every text escaped). */
export function layoutSvg(g: DerivationGraph, merges: MergeInputs = new Map()): { svg?: SafeHtml; omitted: number } {
  const { nodes, edges } = graphParts(g, merges);
  if (!nodes.size) return { omitted: 0 };
  const kept = new Set([...nodes.keys()].slice(0, MAX_GRAPH_NODES));
  const dg = new dagre.graphlib.Graph({ multigraph: true });
  dg.setGraph({ rankdir: 'LR', nodesep: 14, ranksep: 70, marginx: 10, marginy: 10 });
  dg.setDefaultEdgeLabel(() => ({}));
  for (const id of kept) {
    const n = nodes.get(id)!;
    dg.setNode(id, { width: Math.max(60, n.label.length * CHAR + 20), height: NODE_H });
  }
  edges.forEach((e, i) => { if (kept.has(e.from) && kept.has(e.to)) dg.setEdge(e.from, e.to, { width: Math.min(160, e.label.length * 6), height: 14, labelpos: 'c' }, `e${i}`); });
  dagre.layout(dg);
  const gl = dg.graph();
  const W = Math.ceil(gl.width ?? 0);
  const H = Math.ceil(gl.height ?? 0);
  const parts: SafeHtml[] = [];
  edges.forEach((e, i) => {
    if (!kept.has(e.from) || !kept.has(e.to)) return;
    const ed = dg.edge({ v: e.from, w: e.to, name: `e${i}` }) as { points: Array<{ x: number; y: number }>; x?: number; y?: number };
    const d = ed.points.map((p, j) => `${j ? 'L' : 'M'}${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(' ');
    parts.push(html`<path class="${e.behind ? 'edge behind' : 'edge'}" d="${d}" marker-end="url(#arrow)"/>`);
    if (ed.x !== undefined && ed.y !== undefined) {
      const text = `${e.label}${e.behind ? ` (${e.behind} behind)` : ''}`;
      parts.push(html`<text class="edge-label" x="${ed.x.toFixed(1)}" y="${(ed.y - 4).toFixed(1)}" text-anchor="middle">${text.length > 40 ? `${text.slice(0, 39)}…` : text}</text>`);
    }
  });
  for (const id of kept) {
    const n = nodes.get(id)!;
    const p = dg.node(id);
    const x = p.x - p.width / 2;
    const y = p.y - p.height / 2;
    parts.push(html`<a href="${n.href}" class="node ${n.kind}"><rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${p.width}" height="${p.height}" rx="5"/><text x="${p.x.toFixed(1)}" y="${(p.y + 4).toFixed(1)}" text-anchor="middle">${n.label}</text><title>${n.label}</title></a>`);
  }
  const svg = html`<svg class="derivations" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="derivation graph">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z"/></marker></defs>
${parts}</svg>`;
  return { svg, omitted: nodes.size - kept.size };
}

/** The derivation graph of every branch, laid out. Locking: none. */
export function derivationsData(repo: Repository): DerivationsData {
  const graph = derivationGraph(repo);
  return { graph, ...layoutSvg(graph, mergeInputs(repo, graph)) };
}

/** The derivations page. */
export function derivationsPage(d: DerivationsData): SafeHtml {
  const rows = d.graph.edges.map((e) => html`<tr><td><a href="${logUrl(short(e.ref))}">${short(e.ref)}</a></td>
<td>${e.baseRefs.length ? e.baseRefs.map((b) => html`<a href="${logUrl(short(b.ref))}">${short(b.ref)}</a> ${b.behind ? html`<span class="label behind">${b.behind} behind</span>` : html`<span class="label">up to date</span>`} `) : html`<a class="oid" href="${commitUrl(e.base)}">${shortOid(e.base)}</a>`}</td>
<td>${e.summary}</td></tr>`);
  const stale = d.graph.stale.map((s) => html`<li><a href="${logUrl(short(s.ref))}">${short(s.ref)}</a>: ${s.commitsOnTop} commit${s.commitsOnTop === 1 ? '' : 's'} on top of the derived <a class="oid" href="${commitUrl(s.derived)}">${shortOid(s.derived)}</a></li>`);
  return page('derivations', 'derivations', html`<h1>Derivations</h1>
<p class="muted">Each arrow goes from the image a branch was derived from (derive, install, …) to the branch, and from each side of a merge to the merged branch; a dashed arrow's base branch has gained commits since (“behind”).</p>
${d.svg ? html`<div class="graph-box">${d.svg}</div>${d.omitted ? html`<p class="muted">${d.omitted} more nodes are listed below, not drawn</p>` : ''}` : html`<p>no derived branches</p>`}
${rows.length ? html`<table class="list"><thead><tr><th>branch</th><th>derived from</th><th>recipe</th></tr></thead><tbody>${rows}</tbody></table>` : ''}
${stale.length ? html`<h2>Branches with commits on a derived image</h2><ul>${stale}</ul>` : ''}`);
}
