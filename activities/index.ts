export { createPlatformActivities, type PlatformActivities, type PlatformDeps, type ProbeResult } from './platform';
