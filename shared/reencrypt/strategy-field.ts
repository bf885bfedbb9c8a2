import { z } from 'zod';
import { STRATEGIES } from './defaults';

/**
 * The strategies as a schema field (a checkpoint's, an estimate's recommendation), derived from the one list.
 * Apart from defaults.ts, which the CLI reads before any command runs, so that its start loads no zod.
 */
export const strategyField = z.enum(STRATEGIES);
