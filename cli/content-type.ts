/** The CLI sends uploads with the SDK's content types (one table, in offload/client). */
export { contentTypeFor, FALLBACK_CONTENT_TYPE } from '../client';
