// Generation settings for the TypeScript client the test builds. The test passes the input
// (the committed openapi.json) and a temporary output directory on the command line, which
// take precedence over `input` and `output.path` here.
import { defineConfig } from '@hey-api/openapi-ts';

export default defineConfig({
  input: '../../../openapi.json',
  output: {
    path: 'client',
    // Node 20's ESM loader needs explicit extensions in relative imports.
    module: { extension: '.js' },
    postProcess: [],
  },
  parser: { validate_EXPERIMENTAL: 'strict' },
  plugins: ['@hey-api/client-fetch', '@hey-api/typescript', '@hey-api/sdk'],
});
