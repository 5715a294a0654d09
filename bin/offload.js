#!/usr/bin/env node
'use strict';
// The `offload` command: runs cli/main.ts through tsx (no build step), from any directory.
// The SDK's notice about future Node versions is not the user's business in a CLI's stderr.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
require('tsx/cjs/api').register();
require('../cli/main.ts').runAsScript();
