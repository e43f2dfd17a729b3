export * from './layout.ts';
export * from './codec.ts';
export { nowUs } from './clock.ts';
