export { Gateway, type GatewayOptions } from './gateway.ts';
export { SCALE_PATH, STATUS_PATH } from './admin.ts';
