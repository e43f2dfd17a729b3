export * from './pool.ts';
export * from './layout.ts';
