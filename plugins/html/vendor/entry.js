// The parts of three.js the segio viewer page uses; esbuild keeps only what these need.
export {
  AmbientLight,
  Box3,
  BufferAttribute,
  BufferGeometry,
  Color,
  SRGBColorSpace,
  DirectionalLight,
  DoubleSide,
  Group,
  Mesh,
  MeshBasicMaterial,
  MeshStandardMaterial,
  PerspectiveCamera,
  REVISION,
  Raycaster,
  Scene,
  Sphere,
  Vector2,
  Vector3,
  WebGLRenderer,
} from 'three';
export { OrbitControls } from 'three/addons/controls/OrbitControls.js';
