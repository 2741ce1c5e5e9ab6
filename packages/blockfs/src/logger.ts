// The log lines live in @thfc/store; this name stays only for sources/, whose files import '../logger.js' until
// they are reworked (every other file imports @thfc/store).
export { type Logger, SILENT_LOGGER } from '@thfc/store';
