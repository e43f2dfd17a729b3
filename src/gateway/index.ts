export { Gateway, type GatewayOptions } from './gateway.ts';
export { STATUS_PATH } from './http.ts';
