// The page of `cugmm view` (engine/viewer_page.h writes the data it reads). Left: the particles in a plane
// of the latent space (WebGL points through three.js). Right: the Gaussians decoded at the latent point under
// the mouse, evaluated here exactly as decode_points() does (nn/sequential.h in inference mode, then
// kernels/train_step.h's step_param), so the page and `cugmm decode` agree. window.cugmmView is what the
// browser test (tests/browser/view_test.js) drives and reads.
(function () {
  'use strict';
  const t0 = performance.now();
  const meta = JSON.parse(document.getElementById('cugmm-meta').textContent);
  const d = meta.d, G = meta.G, n = meta.n;

  function bytes(id) {
    const s = atob(document.getElementById('blob-' + id).textContent);
    const u = new Uint8Array(s.length);
    for (let i = 0; i < s.length; ++i) u[i] = s.charCodeAt(i);
    return u.buffer;
  }
  const f32 = (id) => new Float32Array(bytes(id));

  // ---- the decoder ------------------------------------------------------------------------------------
  const HALF = (function () {
    const t = new Float32Array(65536);
    for (let h = 0; h < 65536; ++h) {
      const e = (h >> 10) & 31, m = h & 1023;
      const v = e === 0 ? m * Math.pow(2, -24) : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * Math.pow(2, e - 15);
      t[h] = h & 0x8000 ? -v : v;
    }
    return t;
  })();
  const layers = meta.layers.map(function (L) {
    const l = { kind: L.kind, in: L.in, out: L.out };
    if (L.kind === 'dense') {
      const w = new Float32Array(L.in * L.out);
      if (L.format === 'fp16') {
        const h = new Uint16Array(bytes(L.w));
        for (let i = 0; i < w.length; ++i) w[i] = HALF[h[i]];
      } else {
        const q = new Int8Array(bytes(L.w)), s = f32(L.scale);
        for (let r = 0; r < L.out; ++r) for (let c = 0, o = r * L.in; c < L.in; ++c) w[o + c] = q[o + c] * s[r];
      }
      l.w = w;
      l.b = L.bias ? f32(L.bias) : null;
    } else if (L.kind === 'act') {
      l.act = L.act; l.slope = L.slope;
    } else if (L.kind === 'batchnorm') {
      l.gamma = f32(L.gamma); l.beta = f32(L.beta); l.mean = f32(L.mean); l.var = f32(L.var); l.eps = L.eps;
    }
    return l;
  });
  const neutral = f32(meta.neutral);

  function activation(a, x, slope) {
    switch (a) {
      case 'relu': return x > 0 ? x : 0;
      case 'leaky_relu': return x > 0 ? x : slope * x;
      case 'sigmoid': return 1 / (1 + Math.exp(-x));
      case 'tanh': return Math.tanh(x);
      default: return x;
    }
  }
  // Inference mode: dropout is the identity, batch-norm uses its running statistics.
  function decodeRaw(z) {
    let x = Float64Array.from(z);
    for (const l of layers) {
      if (l.kind === 'dense') {
        const nz = [];  // ReLU leaves many zeros: skip their columns
        for (let c = 0; c < l.in; ++c) if (x[c] !== 0) nz.push(c);
        const y = new Float64Array(l.out), w = l.w;
        for (let r = 0; r < l.out; ++r) {
          let s = 0;
          const o = r * l.in;
          for (let k = 0; k < nz.length; ++k) s += w[o + nz[k]] * x[nz[k]];
          y[r] = l.b ? s + l.b[r] : s;
        }
        x = y;
      } else if (l.kind === 'act') {
        for (let i = 0; i < x.length; ++i) x[i] = activation(l.act, x[i], l.slope);
      } else if (l.kind === 'batchnorm') {
        for (let i = 0; i < x.length; ++i) x[i] = l.gamma[i] * (x[i] - l.mean[i]) / Math.sqrt(l.var[i] + l.eps) + l.beta[i];
      }
    }
    return x;
  }
  // A run trained with --rigid remove: the six rigid-body modes out of the position part of the decoder's
  // output (kernels/train_step.h rigid_accumulate / rigid_apply, forward), masses and arms from the neutral model.
  function removeRigid(raw) {
    const R = meta.rigid;
    if (!R) return raw;
    const arm = (j) => [neutral[j] - R.centre[0], neutral[G + j] - R.centre[1], neutral[2 * G + j] - R.centre[2]];
    const s = [0, 0, 0], l = [0, 0, 0];
    for (let j = 0; j < G; ++j) {
      const m = neutral[3 * G + j], r = arm(j), x = [raw[j], raw[G + j], raw[2 * G + j]];
      for (let a = 0; a < 3; ++a) s[a] += m * x[a];
      l[0] += m * (r[1] * x[2] - r[2] * x[1]);
      l[1] += m * (r[2] * x[0] - r[0] * x[2]);
      l[2] += m * (r[0] * x[1] - r[1] * x[0]);
    }
    const I = R.inertia_inv, w = [0, 1, 2].map((a) => I[3 * a] * l[0] + I[3 * a + 1] * l[1] + I[3 * a + 2] * l[2]);
    for (let j = 0; j < G; ++j) {
      const r = arm(j), wr = [w[1] * r[2] - w[2] * r[1], w[2] * r[0] - w[0] * r[2], w[0] * r[1] - w[1] * r[0]];
      for (let a = 0; a < 3; ++a) raw[a * G + j] -= s[a] / R.mass + wr[a];
    }
    return raw;
  }
  // params = neutral + scale x raw per parameter kind, widths clamped (step_param).
  function decode(z) {
    const raw = removeRigid(decodeRaw(z)), p = new Float64Array(5 * G);
    for (let c = 0; c < 5 * G; ++c) {
      const kind = Math.floor(c / G);
      let v = neutral[c] + meta.scale[kind] * raw[c];
      if (kind === 4) v = Math.min(Math.max(v, meta.width_lo), meta.width_hi);
      p[c] = v;
    }
    return p;
  }

  // ---- the latent points and their plane --------------------------------------------------------------
  const latent = f32(meta.latent);
  const axes = [];
  for (let k = 0; k < d; ++k) axes.push({ name: 'PC' + (k + 1) + ' (' + (100 * meta.explained[k]).toFixed(0) + '%)', pc: k });
  for (let j = 0; j < d; ++j) axes.push({ name: 'z' + (j + 1), raw: j });
  function axisValue(a, z, i) {  // point i of z (a flat n x d array)
    if (a.raw !== undefined) return z[i * d + a.raw];
    let s = 0;
    for (let j = 0; j < d; ++j) s += (z[i * d + j] - meta.mean[j]) * meta.components[a.pc * d + j];
    return s;
  }
  // The latent point shown at plane (u, v): the mean, moved so that its coordinates on the two axes are u, v.
  function planeToLatent(u, v) {
    const z = meta.mean.slice();
    [[state.ax, u], [state.ay, v]].forEach(function (p) {
      const a = axes[p[0]];
      if (a.raw !== undefined) { z[a.raw] = p[1]; return; }
      const cur = axisValue(a, z, 0);
      for (let j = 0; j < d; ++j) z[j] += (p[1] - cur) * meta.components[a.pc * d + j];
    });
    return z;
  }

  const state = { ax: 0, ay: d > 1 ? 1 : 0, mode: 'explore', colour: 0, path: [], lasso: [], selection: [], playing: false,
                  current: null, sphereColour: 'amplitude' };
  const plane = new Float32Array(2 * n);
  const view = { left: 0, right: 1, bottom: 0, top: 1 };

  // ---- colourings -------------------------------------------------------------------------------------
  const PALETTE = [[0.12, 0.47, 0.71], [1.0, 0.5, 0.05], [0.17, 0.63, 0.17], [0.84, 0.15, 0.16], [0.58, 0.4, 0.74],
                   [0.55, 0.34, 0.29], [0.89, 0.47, 0.76], [0.5, 0.5, 0.5], [0.74, 0.74, 0.13], [0.09, 0.75, 0.81]];
  function ramp(t) {  // dark blue -> teal -> yellow (viridis-like)
    t = Math.min(Math.max(t, 0), 1);
    const stops = [[0.27, 0.0, 0.33], [0.23, 0.32, 0.55], [0.13, 0.57, 0.55], [0.37, 0.79, 0.38], [0.99, 0.91, 0.15]];
    const x = t * (stops.length - 1), i = Math.min(Math.floor(x), stops.length - 2), f = x - i;
    return [0, 1, 2].map((k) => stops[i][k] * (1 - f) + stops[i + 1][k] * f);
  }
  const css = (c) => 'rgb(' + c.map((v) => Math.round(255 * v)).join(',') + ')';
  const colourings = [];
  colourings.push({ name: 'density', density: true });
  if (meta.clusters) colourings.push({ name: 'cluster (' + meta.clusters.count + '-component mixture)', values: new Uint8Array(bytes(meta.clusters.labels)), categorical: true });
  for (const c of meta.colourings) {
    const v = f32(c.values), distinct = new Set();
    let integer = true;
    for (let i = 0; i < v.length && distinct.size <= PALETTE.length; ++i) { integer = integer && Number.isInteger(v[i]); distinct.add(v[i]); }
    colourings.push({ name: c.name, values: v, categorical: integer && distinct.size <= PALETTE.length });
  }

  function colourPoints(colors) {
    const c = colourings[state.colour], bar = document.getElementById('scatter-bar');
    if (c.categorical) {
      const levels = Array.from(new Set(c.values)).sort((a, b) => a - b);
      const index = new Map(levels.map((l, k) => [l, k]));
      for (let i = 0; i < n; ++i) colors.set(PALETTE[index.get(c.values[i]) % PALETTE.length], 3 * i);
      bar.innerHTML = c.name + ':' + levels.map((l, k) => '<span class="swatch" style="background:' + css(PALETTE[k % PALETTE.length]) + '"></span>' + l).join('');
      return;
    }
    let v = c.values;
    if (c.density) {  // log count of the point's cell on a 128 x 128 grid over the current view
      const B = 128, counts = new Uint32Array(B * B), cell = new Int32Array(n);
      for (let i = 0; i < n; ++i) {
        const bx = Math.floor((plane[2 * i] - view.left) / (view.right - view.left) * B);
        const by = Math.floor((plane[2 * i + 1] - view.bottom) / (view.top - view.bottom) * B);
        cell[i] = bx >= 0 && bx < B && by >= 0 && by < B ? by * B + bx : -1;
        if (cell[i] >= 0) counts[cell[i]]++;
      }
      v = new Float32Array(n);
      for (let i = 0; i < n; ++i) v[i] = cell[i] >= 0 ? Math.log(counts[cell[i]]) : 0;
    }
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < n; ++i) { lo = Math.min(lo, v[i]); hi = Math.max(hi, v[i]); }
    for (let i = 0; i < n; ++i) colors.set(ramp(hi > lo ? (v[i] - lo) / (hi - lo) : 0.5), 3 * i);
    const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => css(ramp(t)) + ' ' + 100 * t + '%').join(',');
    bar.innerHTML = c.name + (c.density ? ' (log count)' : '') + '<div class="ramp" style="background:linear-gradient(to right,' + stops +
                    ')"></div>' + (c.density ? 'low &mdash; high' : lo.toPrecision(3) + ' &mdash; ' + hi.toPrecision(3));
  }

  // ---- left: the scatter ------------------------------------------------------------------------------
  const scatterCanvas = document.getElementById('scatter');
  const scatterRenderer = new THREE.WebGLRenderer({ canvas: scatterCanvas, antialias: false, preserveDrawingBuffer: true });
  scatterRenderer.setClearColor(0xffffff);
  const scatterScene = new THREE.Scene();
  const scatterCamera = new THREE.OrthographicCamera(0, 1, 1, 0, -1, 1);
  const pointGeometry = new THREE.BufferGeometry();
  const pointPositions = new Float32Array(3 * n), pointColours = new Float32Array(3 * n);
  pointGeometry.setAttribute('position', new THREE.BufferAttribute(pointPositions, 3));
  pointGeometry.setAttribute('color', new THREE.BufferAttribute(pointColours, 3));
  const points = new THREE.Points(pointGeometry, new THREE.PointsMaterial({ size: n > 20000 ? 2 : 4, sizeAttenuation: false, vertexColors: THREE.VertexColors }));
  points.frustumCulled = false;
  scatterScene.add(points);

  function project() {
    const ax = axes[state.ax], ay = axes[state.ay];
    for (let i = 0; i < n; ++i) {
      plane[2 * i] = axisValue(ax, latent, i);
      plane[2 * i + 1] = axisValue(ay, latent, i);
      pointPositions[3 * i] = plane[2 * i];
      pointPositions[3 * i + 1] = plane[2 * i + 1];
    }
    pointGeometry.attributes.position.needsUpdate = true;
  }
  function fitView() {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < n; ++i) {
      x0 = Math.min(x0, plane[2 * i]); x1 = Math.max(x1, plane[2 * i]);
      y0 = Math.min(y0, plane[2 * i + 1]); y1 = Math.max(y1, plane[2 * i + 1]);
    }
    const mx = 0.06 * (x1 - x0 || 1), my = 0.06 * (y1 - y0 || 1);
    Object.assign(view, { left: x0 - mx, right: x1 + mx, bottom: y0 - my, top: y1 + my });
  }
  function recolour() {
    colourPoints(pointColours);
    pointGeometry.attributes.color.needsUpdate = true;
  }
  function screenToPlane(px, py) {
    const r = scatterCanvas.getBoundingClientRect();
    return [view.left + px / r.width * (view.right - view.left), view.top - py / r.height * (view.top - view.bottom)];
  }
  function planeToScreen(u, v) {
    const r = scatterCanvas.getBoundingClientRect();
    return [(u - view.left) / (view.right - view.left) * r.width, (view.top - v) / (view.top - view.bottom) * r.height];
  }
  function drawScatter() {
    Object.assign(scatterCamera, view);
    scatterCamera.updateProjectionMatrix();
    scatterRenderer.render(scatterScene, scatterCamera);
    drawOverlay();
  }
  function drawOverlay() {
    const svg = document.getElementById('overlay');
    const poly = (pts, style) => pts.length ? '<polyline points="' + pts.map((p) => planeToScreen(p[0], p[1]).join(',')).join(' ') + '" ' + style + '/>' : '';
    let s = poly(state.path, 'fill="none" stroke="#d62728" stroke-width="2"');
    if (state.lasso.length) s += poly(state.lasso.concat([state.lasso[0]]), 'fill="rgba(31,119,180,0.12)" stroke="#1f77b4" stroke-width="1.5" stroke-dasharray="4 3"');
    if (state.current) {
      const p = planeToScreen(state.current.u, state.current.v);
      s += '<circle cx="' + p[0] + '" cy="' + p[1] + '" r="5" fill="none" stroke="#000" stroke-width="1.5"/>';
    }
    svg.innerHTML = s;
  }

  // ---- right: the decoded model -----------------------------------------------------------------------
  const modelCanvas = document.getElementById('model');
  const modelRenderer = new THREE.WebGLRenderer({ canvas: modelCanvas, antialias: true, preserveDrawingBuffer: true });
  modelRenderer.setClearColor(0xf4f4f4);
  const modelScene = new THREE.Scene();
  const extent = meta.box * meta.pixel;
  const modelCamera = new THREE.PerspectiveCamera(35, 1, extent / 100, extent * 20);
  modelCamera.position.set(0, 0, 2.2 * extent);
  const controls = new THREE.OrbitControls(modelCamera, modelCanvas);
  controls.addEventListener('change', () => modelRenderer.render(modelScene, modelCamera));
  const sphereGeometry = new THREE.BufferGeometry();
  const centres = new Float32Array(3 * G), radii = new Float32Array(G), rgb = new Float32Array(3 * G);
  sphereGeometry.setAttribute('position', new THREE.BufferAttribute(centres, 3));
  sphereGeometry.setAttribute('radius', new THREE.BufferAttribute(radii, 1));
  sphereGeometry.setAttribute('rgb', new THREE.BufferAttribute(rgb, 3));
  // Sphere impostors: one point sprite per Gaussian, radius = its width s, shaded as a sphere.
  const sphereMaterial = new THREE.ShaderMaterial({
    uniforms: { projScale: { value: 1 } },
    vertexShader: 'attribute float radius; attribute vec3 rgb; uniform float projScale; varying vec3 vRgb;\n' +
      'void main() { vRgb = rgb; vec4 mv = modelViewMatrix * vec4(position, 1.0);\n' +
      '  gl_PointSize = max(2.0, 2.0 * radius * projScale / -mv.z); gl_Position = projectionMatrix * mv; }',
    fragmentShader: 'varying vec3 vRgb;\n' +
      'void main() { vec2 p = gl_PointCoord * 2.0 - 1.0; float r2 = dot(p, p); if (r2 > 1.0) discard;\n' +
      '  vec3 nrm = vec3(p.x, -p.y, sqrt(1.0 - r2));\n' +
      '  float l = 0.35 + 0.65 * max(dot(nrm, normalize(vec3(0.4, 0.5, 1.0))), 0.0); gl_FragColor = vec4(vRgb * l, 1.0); }',
  });
  const spheres = new THREE.Points(sphereGeometry, sphereMaterial);
  spheres.frustumCulled = false;
  modelScene.add(spheres);

  function showModel(p) {
    let amax = 0, dmax = meta.pixel;
    for (let j = 0; j < G; ++j) amax = Math.max(amax, Math.abs(p[3 * G + j]));
    const disp = new Float64Array(G);
    for (let j = 0; j < G; ++j) {
      centres[3 * j] = p[j]; centres[3 * j + 1] = p[G + j]; centres[3 * j + 2] = p[2 * G + j];
      radii[j] = p[4 * G + j];
      disp[j] = Math.hypot(p[j] - neutral[j], p[G + j] - neutral[G + j], p[2 * G + j] - neutral[2 * G + j]);
      dmax = Math.max(dmax, disp[j]);
    }
    const byAmp = state.sphereColour === 'amplitude';
    for (let j = 0; j < G; ++j) rgb.set(ramp(byAmp ? (amax > 0 ? Math.abs(p[3 * G + j]) / amax : 0) : disp[j] / dmax), 3 * j);
    const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => css(ramp(t)) + ' ' + 100 * t + '%').join(',');
    document.getElementById('model-bar').innerHTML = (byAmp ? 'amplitude / largest' : 'displacement from neutral (Å)') +
      '<div class="ramp" style="background:linear-gradient(to right,' + stops + ')"></div>0 &mdash; ' + (byAmp ? '1' : dmax.toFixed(2));
    for (const name of ['position', 'radius', 'rgb']) sphereGeometry.attributes[name].needsUpdate = true;
    modelRenderer.render(modelScene, modelCamera);
  }

  function resize() {
    for (const [r, c] of [[scatterRenderer, scatterCanvas], [modelRenderer, modelCanvas]]) {
      const b = c.parentElement.getBoundingClientRect();
      r.setPixelRatio(window.devicePixelRatio || 1);
      r.setSize(Math.max(1, b.width), Math.max(1, b.height), false);
    }
    const b = modelCanvas.getBoundingClientRect();
    modelCamera.aspect = b.width / Math.max(1, b.height);
    modelCamera.updateProjectionMatrix();
    sphereMaterial.uniforms.projScale.value = b.height * (window.devicePixelRatio || 1) / (2 * Math.tan(modelCamera.fov * Math.PI / 360));
    drawScatter();
    if (state.current) showModel(state.current.params);
  }

  // ---- moving through the latent space ----------------------------------------------------------------
  function goTo(u, v) {
    const z = planeToLatent(u, v), ts = performance.now(), params = decode(z);
    state.current = { u: u, v: v, z: z, params: params, ms: performance.now() - ts };
    showModel(params);
    drawOverlay();
    document.getElementById('readout').textContent = 'z = (' + z.map((x) => x.toFixed(4)).join(', ') + ')   decoded in ' +
      state.current.ms.toFixed(1) + ' ms   ' + n + ' particles, ' + G + ' Gaussians';
  }
  let pending = null;
  function goToSoon(u, v) {  // at most one decode per frame
    if (pending === null) requestAnimationFrame(() => { const p = pending; pending = null; goTo(p[0], p[1]); });
    pending = [u, v];
  }
  function pointAlong(path, t) {  // t in [0, 1] by arc length
    const len = [0];
    for (let i = 1; i < path.length; ++i) len.push(len[i - 1] + Math.hypot(path[i][0] - path[i - 1][0], path[i][1] - path[i - 1][1]));
    const s = t * len[len.length - 1];
    let i = 1;
    while (i < path.length - 1 && len[i] < s) ++i;
    const f = len[i] > len[i - 1] ? (s - len[i - 1]) / (len[i] - len[i - 1]) : 0;
    return [path[i - 1][0] + f * (path[i][0] - path[i - 1][0]), path[i - 1][1] + f * (path[i][1] - path[i - 1][1])];
  }
  function play() {
    if (state.path.length < 2) return;
    state.playing = !state.playing;
    document.getElementById('play').textContent = state.playing ? 'stop' : 'play path';
    const start = performance.now(), period = 4000;
    (function frame() {
      if (!state.playing) return;
      const ph = ((performance.now() - start) % period) / period;
      const p = pointAlong(state.path, ph < 0.5 ? 2 * ph : 2 - 2 * ph);  // there and back
      goTo(p[0], p[1]);
      requestAnimationFrame(frame);
    })();
  }
  function inside(poly, x, y) {  // even-odd rule
    let c = false;
    for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
      const xi = poly[i][0], yi = poly[i][1], xj = poly[j][0], yj = poly[j][1];
      if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) c = !c;
    }
    return c;
  }
  function select() {
    state.selection = [];
    if (state.lasso.length >= 3) for (let i = 0; i < n; ++i) if (inside(state.lasso, plane[2 * i], plane[2 * i + 1])) state.selection.push(i);
    document.getElementById('selection').textContent = state.selection.length ? state.selection.length + ' selected' : '';
    document.getElementById('export-star').disabled = state.selection.length === 0;
  }

  // ---- files the page writes --------------------------------------------------------------------------
  function download(name, text, type) {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([text], { type: type || 'text/plain' }));
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }
  let starRows = null;
  async function rows() {  // the gzipped STAR rows, unpacked once, on first use
    if (!starRows) {
      const stream = new Blob([bytes(meta.star.rows)]).stream().pipeThrough(new DecompressionStream('gzip'));
      const text = await new Response(stream).text();
      starRows = text.split('\n');
      starRows.pop();
      if (starRows.length !== n) throw new Error('the STAR rows do not match the particles');
    }
    return starRows;
  }
  async function selectionStar() {
    const r = await rows();
    return meta.star.header + state.selection.map((i) => r[i]).join('\n') + '\n\n';
  }
  const mapOffset = Math.floor(meta.box / 2) * meta.pixel;  // model frame -> map frame (DESIGN §3)
  function pdbText(p) {
    let amax = 0, s = 'REMARK   cugmm view: Gaussians decoded at z = (' + state.current.z.map((x) => x.toFixed(5)).join(', ') + ')\n';
    for (let j = 0; j < G; ++j) amax = Math.max(amax, Math.abs(p[3 * G + j]));
    const f = (x, w, k) => x.toFixed(k).padStart(w);
    for (let j = 0; j < G; ++j) {
      const occ = amax > 0 ? p[3 * G + j] / amax : 0, b = Math.min(8 * Math.PI * Math.PI * p[4 * G + j] * p[4 * G + j], 999.99);
      s += 'ATOM  ' + String((j % 99999) + 1).padStart(5) + '  CA  GAU ' + String.fromCharCode(65 + Math.floor(j / 9999) % 26) +
           String((j % 9999) + 1).padStart(4) + '    ' + f(p[j] + mapOffset, 8, 3) + f(p[G + j] + mapOffset, 8, 3) +
           f(p[2 * G + j] + mapOffset, 8, 3) + f(occ, 6, 2) + f(b, 6, 2) + '           C\n';
    }
    return s + 'END\n';
  }
  function cmmText(p) {
    let amax = 0, s = '<marker_set name="cugmm_view">\n';
    for (let j = 0; j < G; ++j) amax = Math.max(amax, Math.abs(p[3 * G + j]));
    for (let j = 0; j < G; ++j) {
      const c = ramp(amax > 0 ? Math.abs(p[3 * G + j]) / amax : 0);
      s += '<marker id="' + (j + 1) + '" x="' + (p[j] + mapOffset).toFixed(4) + '" y="' + (p[G + j] + mapOffset).toFixed(4) + '" z="' +
           (p[2 * G + j] + mapOffset).toFixed(4) + '" r="' + c[0].toFixed(3) + '" g="' + c[1].toFixed(3) + '" b="' + c[2].toFixed(3) +
           '" radius="' + (2 * p[4 * G + j]).toFixed(4) + '"/>\n';
    }
    return s + '</marker_set>\n';
  }

  // ---- controls ---------------------------------------------------------------------------------------
  const axisX = document.getElementById('axis-x'), axisY = document.getElementById('axis-y'), colourSel = document.getElementById('colour');
  axes.forEach((a, k) => { axisX.add(new Option(a.name, k)); axisY.add(new Option(a.name, k)); });
  colourings.forEach((c, k) => colourSel.add(new Option(c.name, k)));
  axisX.value = state.ax; axisY.value = state.ay;
  colourSel.value = state.colour = meta.clusters ? 1 : 0;
  document.getElementById('title').textContent = 'cugmm view: ' + meta.title;
  function setAxes(x, y) {
    state.ax = x; state.ay = y; axisX.value = x; axisY.value = y;
    state.path = []; state.lasso = []; state.playing = false;
    select();
    project(); fitView(); recolour(); drawScatter();
    const c = [(view.left + view.right) / 2, (view.bottom + view.top) / 2];
    goTo(c[0], c[1]);
  }
  axisX.onchange = axisY.onchange = () => setAxes(+axisX.value, +axisY.value);
  colourSel.onchange = () => { state.colour = +colourSel.value; recolour(); drawScatter(); };
  document.getElementById('sphere-colour').onchange = (e) => { state.sphereColour = e.target.value; showModel(state.current.params); };
  for (const r of document.querySelectorAll('input[name=mode]')) r.onchange = () => { state.mode = r.value; };
  document.getElementById('play').onclick = play;
  document.getElementById('export-star').onclick = async () => download('selection.star', await selectionStar());
  document.getElementById('save-pdb').onclick = () => download('decoded.pdb', pdbText(state.current.params));
  document.getElementById('save-cmm').onclick = () => download('decoded.cmm', cmmText(state.current.params));

  let drag = null;
  scatterCanvas.addEventListener('mousedown', (e) => {
    const p = screenToPlane(e.offsetX, e.offsetY);
    drag = { x: e.offsetX, y: e.offsetY, view: Object.assign({}, view) };
    if (state.mode === 'path') { state.playing = false; state.path = [p]; }
    if (state.mode === 'lasso') { state.lasso = [p]; }
    drawOverlay();
  });
  scatterCanvas.addEventListener('mousemove', (e) => {
    const p = screenToPlane(e.offsetX, e.offsetY);
    if (drag && state.mode === 'explore') {  // pan
      const r = scatterCanvas.getBoundingClientRect();
      const dx = (e.offsetX - drag.x) / r.width * (view.right - view.left), dy = (e.offsetY - drag.y) / r.height * (view.top - view.bottom);
      Object.assign(view, { left: drag.view.left - dx, right: drag.view.right - dx, bottom: drag.view.bottom + dy, top: drag.view.top + dy });
      drawScatter();
      return;
    }
    if (drag && state.mode === 'path') { state.path.push(p); drawOverlay(); }
    if (drag && state.mode === 'lasso') { state.lasso.push(p); drawOverlay(); return; }
    if (!state.playing) goToSoon(p[0], p[1]);
  });
  window.addEventListener('mouseup', () => {
    if (!drag) return;
    drag = null;
    if (state.mode === 'lasso') { select(); drawOverlay(); }
    if (state.mode === 'path') {
      document.getElementById('play').disabled = state.path.length < 2;
      if (state.path.length >= 2) play();
    }
  });
  scatterCanvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    const p = screenToPlane(e.offsetX, e.offsetY), f = Math.exp(0.0015 * e.deltaY);
    Object.assign(view, { left: p[0] + (view.left - p[0]) * f, right: p[0] + (view.right - p[0]) * f,
                          bottom: p[1] + (view.bottom - p[1]) * f, top: p[1] + (view.top - p[1]) * f });
    drawScatter();
  }, { passive: false });
  window.addEventListener('resize', resize);

  // ---- start --------------------------------------------------------------------------------------------
  project(); fitView(); recolour(); resize();
  goTo((view.left + view.right) / 2, (view.bottom + view.top) / 2);
  window.cugmmView = {
    meta: meta, state: state, view: view, decode: decode, planeToScreen: planeToScreen, screenToPlane: screenToPlane,
    setAxes: setAxes, selectionStar: selectionStar, pdbText: () => pdbText(state.current.params),
    current: () => ({ z: state.current.z, u: state.current.u, v: state.current.v, params: Array.from(state.current.params), ms: state.current.ms }),
    scriptMs: performance.now() - t0, interactiveMs: performance.now(), ready: true,
  };
})();
