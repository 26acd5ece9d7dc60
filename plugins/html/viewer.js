// segio's viewer page (plugins/html/page.py writes it): three.js from the inlined bundle,
// the segments' meshes from the inlined buffer, a segment list with folders.
// URL hash options: #flat (unlit colours, no panel: for screenshots and tests),
// #hide=ID1,ID2 (unticks those segments' boxes, as a click would).
// When drawn, <html> gets data-segio-state="ready", data-segio-meshes (meshes drawn) and
// data-segio-resources (every URL the page fetched: only data: and blob: ones).

const $ = (id) => document.getElementById(id);
const root = document.documentElement;
const params = new URLSearchParams(location.hash.slice(1));
const flat = params.has('flat');

function fail(error) {
  root.dataset.segioState = 'error';
  $('status').textContent = 'Cannot show the segmentation: ' + (error && error.message || error);
}

function bytesOf(id) {
  const text = $(id).textContent.trim();
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

async function inflate(id) {
  const stream = new Blob([bytesOf(id)]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// The buffer's layout is page.py's encode(): byte planes of deltas, segment after segment.
function reader(data) {
  let at = 0;
  return function planes(count, width) {
    const out = width === 2 ? new Uint16Array(count) : new Uint32Array(count);
    for (let k = 0; k < width; k++) {
      const shift = 8 * k;
      for (let i = 0; i < count; i++) out[i] |= data[at + i] << shift;
      at += count;
    }
    return out;
  };
}

function geometryOf(T, segment, planes) {
  const n = segment.vertices, m = 3 * segment.triangles;
  const deltas = planes(3 * n, 2);
  const positions = new Float32Array(3 * n);
  const code = [0, 0, 0];
  for (let i = 0; i < 3 * n; i++) {
    const axis = i % 3;
    code[axis] = (code[axis] + deltas[i]) & 0xffff;
    positions[i] = segment.origin[axis] + code[axis] * segment.step;
  }
  const zigzag = planes(m, 4);
  const indices = n > 65535 ? new Uint32Array(m) : new Uint16Array(m);
  let index = 0;
  for (let i = 0; i < m; i++) {
    const z = zigzag[i];
    index += (z >>> 1) ^ -(z & 1);
    indices[i] = index;
  }
  const geometry = new T.BufferGeometry();
  geometry.setAttribute('position', new T.BufferAttribute(positions, 3));
  geometry.setIndex(new T.BufferAttribute(indices, 1));
  geometry.computeVertexNormals();
  geometry.computeBoundingSphere();
  return geometry;
}

function hoverText(segment) {
  const lines = [segment.name];
  for (const [key, value] of Object.entries(segment.terminology || {})) {
    lines.push(key + ': ' + value);
  }
  if (!segment.triangles) lines.push('(no surface: empty segment)');
  return lines.join('\n');
}

function setOpacity(material, opacity) {
  material.opacity = opacity;
  material.transparent = opacity < 1;
  material.depthWrite = opacity >= 1;
  material.needsUpdate = true;
}

// The list: folders (<details>) from each segment's folder path, a row per segment.
function buildList(meta, onChange) {
  const rows = [];
  const folders = new Map();
  const list = $('list');
  function folderFor(path) {
    let parent = list, key = '';
    for (const name of path) {
      key += '\u0000' + name;
      if (!folders.has(key)) {
        const details = document.createElement('details');
        details.open = true;
        const summary = document.createElement('summary');
        const box = document.createElement('input');
        box.type = 'checkbox';
        box.checked = true;
        box.title = 'Show or hide everything in ' + name;
        const label = document.createElement('span');
        label.textContent = ' ' + name + ' ';
        const count = document.createElement('span');
        count.className = 'count';
        summary.append(box, label, count);
        const body = document.createElement('div');
        details.append(summary, body);
        parent.append(details);
        folders.set(key, { box, body, count, rows: [] });
        box.addEventListener('change', () => {
          for (const row of folders.get(key).rows) {
            if (!row.box.disabled && row.box.checked !== box.checked) {
              row.box.checked = box.checked;
              row.box.dispatchEvent(new Event('change'));
            }
          }
        });
      }
      parent = folders.get(key).body;
    }
    return key;
  }
  for (const segment of meta.segments) {
    const key = folderFor(segment.folder || []);
    const container = key ? folders.get(key).body : list;
    const row = document.createElement('div');
    row.className = 'row' + (segment.triangles ? '' : ' empty');
    row.title = hoverText(segment);
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = segment.triangles > 0;
    box.disabled = !segment.triangles;
    box.dataset.segment = segment.id;
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = 'rgb(' + segment.color.map((c) => Math.round(255 * c)).join(',') + ')';
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = segment.name;
    label.append(box, swatch, name);
    const slider = document.createElement('input');
    slider.type = 'range';
    slider.min = '0';
    slider.max = '1';
    slider.step = '0.05';
    slider.value = String(segment.opacity);
    slider.title = 'Opacity of ' + segment.name;
    slider.disabled = !segment.triangles;
    row.append(label, slider);
    container.append(row);
    const entry = { segment, row, box, slider, folders: [] };
    for (let k = key; k; k = k.slice(0, k.lastIndexOf('\u0000'))) {
      folders.get(k).rows.push(entry);
      entry.folders.push(folders.get(k));
    }
    rows.push(entry);
    box.addEventListener('change', () => { onChange(entry); refreshFolders(entry.folders); });
    slider.addEventListener('input', () => onChange(entry));
  }
  refreshFolders(folders.values());
  return rows;
}

function refreshFolders(folders) {
  for (const folder of folders) {
    const usable = folder.rows.filter((row) => !row.box.disabled);
    const shown = usable.filter((row) => row.box.checked).length;
    folder.box.checked = shown > 0;
    folder.box.indeterminate = shown > 0 && shown < usable.length;
    folder.count.textContent = '(' + folder.rows.length + ')';
  }
}

async function main() {
  const meta = JSON.parse($('segio-metadata').textContent);
  $('heading').textContent = meta.title;
  if (flat) document.body.classList.add('flat');
  const [library, data] = await Promise.all([inflate('segio-three'), inflate('segio-meshes')]);
  const url = URL.createObjectURL(new Blob([library], { type: 'text/javascript' }));
  const T = await import(url);
  URL.revokeObjectURL(url);

  const view = $('view');
  const renderer = new T.WebGLRenderer({ antialias: !flat, preserveDrawingBuffer: true });
  renderer.setPixelRatio(window.devicePixelRatio);
  renderer.setClearColor(flat ? 0x000000 : 0x1e1f24, 1);
  view.prepend(renderer.domElement);
  const scene = new T.Scene();
  const camera = new T.PerspectiveCamera(30, 1, 1, 10000);
  scene.add(camera);
  if (!flat) {
    scene.add(new T.AmbientLight(0xffffff, 0.6));
    const light = new T.DirectionalLight(0xffffff, 2.4);
    light.position.set(0.4, 0.7, 0);  // a headlight, a little above and right of the eye
    light.target.position.set(0, 0, -1);
    camera.add(light, light.target);
  }

  const planes = reader(data);
  const meshes = new Map();
  const box = new T.Box3();
  for (const segment of meta.segments) {
    if (!segment.triangles) continue;
    const geometry = geometryOf(T, segment, planes);
    const Material = flat ? T.MeshBasicMaterial : T.MeshStandardMaterial;
    const material = new Material({ side: T.DoubleSide });
    if (!flat) { material.roughness = 0.6; material.metalness = 0; }
    material.color.setRGB(segment.color[0], segment.color[1], segment.color[2], T.SRGBColorSpace);
    setOpacity(material, segment.opacity);
    const mesh = new T.Mesh(geometry, material);
    mesh.name = segment.name;
    mesh.userData.segment = segment;
    scene.add(mesh);
    meshes.set(segment.id, mesh);
    box.expandByObject(mesh);
  }

  const controls = new T.OrbitControls(camera, renderer.domElement);
  const sphere = box.isEmpty() ? new T.Sphere(new T.Vector3(), 100) : box.getBoundingSphere(new T.Sphere());
  function render() { renderer.render(scene, camera); }
  function resize() {
    const width = view.clientWidth, height = view.clientHeight;
    renderer.setSize(width, height);
    camera.aspect = width / Math.max(height, 1);
    camera.updateProjectionMatrix();
    render();
  }
  function frame() {  // the whole segmentation, seen from the front (anterior: +Z)
    const half = Math.atan(Math.tan(camera.fov * Math.PI / 360) * Math.min(camera.aspect, 1));
    const distance = 1.1 * sphere.radius / Math.sin(half);
    camera.position.copy(sphere.center).add(new T.Vector3(0, 0, distance));
    camera.near = Math.max(distance / 1000, 0.01);
    camera.far = distance + 4 * sphere.radius;
    camera.updateProjectionMatrix();
    controls.target.copy(sphere.center);
    controls.update();
  }
  controls.addEventListener('change', render);

  const rows = buildList(meta, (entry) => {
    const mesh = meshes.get(entry.segment.id);
    if (!mesh) return;
    mesh.visible = entry.box.checked;
    setOpacity(mesh.material, Number(entry.slider.value));
    render();
  });
  function showAll(shown) {
    for (const row of rows) {
      if (!row.box.disabled && row.box.checked !== shown) {
        row.box.checked = shown;
        row.box.dispatchEvent(new Event('change'));
      }
    }
  }
  $('show-all').addEventListener('click', () => showAll(true));
  $('hide-all').addEventListener('click', () => showAll(false));
  const hidden = new Set((params.get('hide') || '').split(',').filter(Boolean));
  for (const row of rows) {
    if (hidden.has(row.segment.id) && row.box.checked) {
      row.box.checked = false;
      row.box.dispatchEvent(new Event('change'));
    }
  }

  // Hover over a surface: its name and terminology next to the pointer, its row marked.
  const raycaster = new T.Raycaster();
  const pointer = new T.Vector2();
  const tip = $('tip');
  let pending = null, marked = null;
  renderer.domElement.addEventListener('pointermove', (event) => {
    pending = event;
    requestAnimationFrame(() => {
      if (!pending) return;
      const e = pending;
      pending = null;
      const rect = renderer.domElement.getBoundingClientRect();
      pointer.set(((e.clientX - rect.left) / rect.width) * 2 - 1,
        -((e.clientY - rect.top) / rect.height) * 2 + 1);
      raycaster.setFromCamera(pointer, camera);
      const visible = [...meshes.values()].filter((mesh) => mesh.visible);
      const hit = e.buttons ? null : raycaster.intersectObjects(visible, false)[0];
      if (marked) marked.row.classList.remove('hover');
      marked = hit ? rows.find((row) => row.segment === hit.object.userData.segment) : null;
      tip.hidden = !hit;
      if (!hit) return;
      marked.row.classList.add('hover');
      tip.textContent = hoverText(hit.object.userData.segment);
      tip.style.left = (e.clientX - rect.left + 14) + 'px';
      tip.style.top = (e.clientY - rect.top + 14) + 'px';
    });
  });
  renderer.domElement.addEventListener('pointerleave', () => { tip.hidden = true; });

  window.addEventListener('resize', resize);
  resize();
  frame();
  render();
  const drawn = [...meshes.values()].filter((mesh) => mesh.visible).length;
  $('status').textContent = meta.segments.length + ' segments, three.js r' + T.REVISION;
  root.dataset.segioMeshes = String(drawn);
  root.dataset.segioResources = JSON.stringify(
    performance.getEntriesByType('resource').map((entry) => entry.name));
  root.dataset.segioState = 'ready';
}

main().catch(fail);
