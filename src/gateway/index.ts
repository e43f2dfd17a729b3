export { Gateway, type GatewayOptions, type GatewayStats } from './gateway.ts';
export { STATUS_PATH } from './http.ts';
