#!/usr/bin/env node
// The command's entry: signals are held from here, before its modules load (see @thfc/cli/early-signals).
import { holdSignals } from '@thfc/cli/early-signals';

holdSignals();
await import('./cli.js');
