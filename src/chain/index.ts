export * from './deployment.ts';
export * from './load.ts';
export { chainFileSchema, type ChainFile, type ChainFileInput } from './schema.ts';
