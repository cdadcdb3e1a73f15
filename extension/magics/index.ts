/** The magic framework's public face: what the executor and magic handlers import. */
export { FarlabError, MagicUsageError, isFarlabError } from "./errors";
export { registerMagic, MagicRegistry } from "./registry";
export { createMagicRouter, type MagicRouter } from "./router";
export { parseDuration, parseSize } from "./units";
export type * from "./types";
