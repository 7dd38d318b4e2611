import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The daemon serves the build output from osbuildd/web/static/ (see the issue 18 contract);
// everything is bundled so the UI needs no network beyond the daemon.
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: '../osbuildd/web/static',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 800,
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:8086' },
  },
});
