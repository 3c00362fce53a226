export { platformCheck } from './platform-check';
