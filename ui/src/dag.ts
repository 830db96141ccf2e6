// A small layered (Sugiyama-style) layout for the service graph, left to
// right: break cycles, assign layers by longest path, add dummy nodes on long
// edges, order each layer by barycentre sweeps, then place nodes on a grid.

export interface DagEdge {
  from: string;
  to: string;
}

export interface PlacedNode {
  id: string;
  layer: number;
  x: number; // left edge
  y: number; // centre
}

export interface PlacedEdge {
  from: string;
  to: string;
  /** points from the source's right side to the target's left side */
  points: { x: number; y: number }[];
  self: boolean;
}

export interface DagLayout {
  nodes: PlacedNode[];
  edges: PlacedEdge[];
  width: number;
  height: number;
}

export interface DagOptions {
  nodeWidth: number;
  nodeHeight: number;
  layerGap: number; // horizontal space between layers
  rowGap: number; // vertical space between nodes in a layer
  margin: number;
}

const DEFAULTS: DagOptions = { nodeWidth: 160, nodeHeight: 40, layerGap: 140, rowGap: 36, margin: 24 };

export function layoutDag(ids: string[], edges: DagEdge[], options: Partial<DagOptions> = {}): DagLayout {
  const o = { ...DEFAULTS, ...options };
  const nodes = [...new Set([...ids, ...edges.flatMap((e) => [e.from, e.to])])].sort();
  const index = new Map(nodes.map((id, i) => [id, i]));
  const n = nodes.length;

  // Unique non-self edges, as index pairs.
  const seen = new Set<string>();
  const pairs: [number, number][] = [];
  for (const e of edges) {
    if (e.from === e.to) continue;
    const key = `${e.from}\u0000${e.to}`;
    if (seen.has(key)) continue;
    seen.add(key);
    pairs.push([index.get(e.from)!, index.get(e.to)!]);
  }

  // 1. Break cycles: depth-first search; an edge to a node on the stack is
  // reversed for layering.
  const out: number[][] = Array.from({ length: n }, () => []);
  for (const [a, b] of pairs) out[a].push(b);
  const state = new Uint8Array(n); // 0 new, 1 on stack, 2 done
  const reversed = new Set<string>();
  for (let s = 0; s < n; s++) {
    if (state[s]) continue;
    const stack: [number, number][] = [[s, 0]];
    state[s] = 1;
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [v, i] = top;
      if (i < out[v].length) {
        top[1]++;
        const w = out[v][i];
        if (state[w] === 1) reversed.add(`${v},${w}`);
        else if (state[w] === 0) {
          state[w] = 1;
          stack.push([w, 0]);
        }
      } else {
        state[v] = 2;
        stack.pop();
      }
    }
  }
  const dag: [number, number][] = pairs.map(([a, b]) => (reversed.has(`${a},${b}`) ? [b, a] : [a, b]));

  // 2. Layers: longest path from the sources (Kahn's order).
  const succ: number[][] = Array.from({ length: n }, () => []);
  const indeg = new Array(n).fill(0);
  for (const [a, b] of dag) {
    succ[a].push(b);
    indeg[b]++;
  }
  const layer = new Array(n).fill(0);
  const queue: number[] = [];
  for (let v = 0; v < n; v++) if (indeg[v] === 0) queue.push(v);
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q];
    for (const w of succ[v]) {
      layer[w] = Math.max(layer[w], layer[v] + 1);
      if (--indeg[w] === 0) queue.push(w);
    }
  }
  // Pull sources right, next to their nearest child, so short side branches
  // do not stretch edges across the whole graph.
  for (let v = 0; v < n; v++) {
    if (dag.some(([, b]) => b === v) || succ[v].length === 0) continue;
    layer[v] = Math.min(...succ[v].map((w) => layer[w])) - 1;
  }

  // 3. Dummy nodes so that every edge joins adjacent layers.
  type Vertex = { layer: number; real: number | null; pos: number };
  const vs: Vertex[] = nodes.map((_, i) => ({ layer: layer[i], real: i, pos: 0 }));
  const chains: number[][] = []; // per dag edge: vertex chain from source to target
  const links: [number, number][] = [];
  for (const [a, b] of dag) {
    const chain = [a];
    for (let l = layer[a] + 1; l < layer[b]; l++) {
      vs.push({ layer: l, real: null, pos: 0 });
      chain.push(vs.length - 1);
    }
    chain.push(b);
    for (let i = 0; i + 1 < chain.length; i++) links.push([chain[i], chain[i + 1]]);
    chains.push(chain);
  }
  const layerCount = vs.reduce((m, v) => Math.max(m, v.layer + 1), 0);
  const layers: number[][] = Array.from({ length: layerCount }, () => []);
  vs.forEach((v, i) => layers[v.layer].push(i));
  const up: number[][] = vs.map(() => []);
  const down: number[][] = vs.map(() => []);
  for (const [a, b] of links) {
    down[a].push(b);
    up[b].push(a);
  }

  // 4. Ordering: barycentre sweeps, keeping the order with fewest crossings.
  const setPositions = () => layers.forEach((l) => l.forEach((v, i) => (vs[v].pos = i)));
  setPositions();
  const crossings = () => {
    let c = 0;
    for (let l = 0; l + 1 < layers.length; l++) {
      const es: [number, number][] = [];
      for (const v of layers[l]) for (const w of down[v]) es.push([vs[v].pos, vs[w].pos]);
      for (let i = 0; i < es.length; i++)
        for (let j = i + 1; j < es.length; j++)
          if ((es[i][0] - es[j][0]) * (es[i][1] - es[j][1]) < 0) c++;
    }
    return c;
  };
  let best = layers.map((l) => [...l]);
  let bestCrossings = crossings();
  for (let sweep = 0; sweep < 12 && bestCrossings > 0; sweep++) {
    const downward = sweep % 2 === 0;
    const order = downward ? layers.map((_, i) => i).slice(1) : layers.map((_, i) => i).reverse().slice(1);
    for (const l of order) {
      const nb = downward ? up : down;
      const bary = new Map<number, number>();
      for (const v of layers[l]) {
        const ps = nb[v].map((w) => vs[w].pos);
        bary.set(v, ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : vs[v].pos);
      }
      layers[l].sort((a, b) => bary.get(a)! - bary.get(b)! || vs[a].pos - vs[b].pos);
      layers[l].forEach((v, i) => (vs[v].pos = i));
    }
    const c = crossings();
    if (c < bestCrossings) {
      bestCrossings = c;
      best = layers.map((l) => [...l]);
    }
  }
  best.forEach((l, i) => (layers[i] = l));
  setPositions();

  // 5. Coordinates: layers as columns, each column centred vertically.
  const rowPitch = o.nodeHeight + o.rowGap;
  const tallest = layers.reduce((m, l) => Math.max(m, l.length), 0);
  const height = Math.max(1, tallest) * rowPitch - o.rowGap + 2 * o.margin;
  const xOf = (l: number) => o.margin + l * (o.nodeWidth + o.layerGap);
  const yOf = (v: number) => {
    const l = layers[vs[v].layer];
    const top = (height - (l.length * rowPitch - o.rowGap)) / 2;
    return top + vs[v].pos * rowPitch + o.nodeHeight / 2;
  };
  const placed: PlacedNode[] = nodes.map((id, i) => ({ id, layer: layer[i], x: xOf(layer[i]), y: yOf(i) }));
  const width = Math.max(1, layerCount) * (o.nodeWidth + o.layerGap) - o.layerGap + 2 * o.margin;

  const placedEdges: PlacedEdge[] = [];
  pairs.forEach(([a, b], k) => {
    let chain = chains[k];
    if (chain[0] !== a) chain = [...chain].reverse(); // reversed for layering
    const points = chain.map((v, i) => {
      const x = xOf(vs[v].layer);
      const y = yOf(v);
      if (vs[v].real === null) return { x: x + o.nodeWidth / 2, y };
      // leave the source from its right side (or its left if reversed), enter the target on the other
      const leaving = i === 0;
      const forward = vs[chain[0]].layer <= vs[chain[chain.length - 1]].layer;
      return { x: leaving === forward ? x + o.nodeWidth : x, y };
    });
    placedEdges.push({ from: nodes[a], to: nodes[b], points, self: false });
  });
  for (const e of edges) {
    if (e.from !== e.to || placedEdges.some((p) => p.self && p.from === e.from)) continue;
    const p = placed[index.get(e.from)!];
    placedEdges.push({ from: e.from, to: e.to, points: [{ x: p.x + o.nodeWidth * 0.7, y: p.y - o.nodeHeight / 2 }], self: true });
  }

  return { nodes: placed, edges: placedEdges, width, height };
}
