// ONNX Runtime (CPU) on the same grid as cnnserve-bench, for bench/compare_engines.
//   node ort_bench.js --model=M.onnx --batch=1,8,32 --threads=1,2 --seconds=S --json=OUT
'use strict';
const ort = require('onnxruntime-node');
const fs = require('fs');
const path = require('path');

const args = Object.fromEntries(process.argv.slice(2).map((a) => {
  const [k, v] = a.replace(/^--/, '').split('=');
  return [k, v];
}));
const list = (s) => s.split(',').map(Number).filter((n) => n > 0);

async function main() {
  const rows = [];
  const seconds = Number(args.seconds || 3);
  for (const threads of list(args.threads || '1,2')) {
    const session = await ort.InferenceSession.create(args.model, {
      intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    const inputName = session.inputNames[0];
    const dims = session.inputMetadata
      ? session.inputMetadata[0].shape.slice(1).map(Number) : null;
    for (const batch of list(args.batch || '1,8,32')) {
      const chw = dims || JSON.parse(args.chw);
      const n = batch * chw.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      let seed = 12345;
      for (let i = 0; i < n; ++i) { seed = (seed * 1103515245 + 12345) >>> 0; data[i] = seed / 2 ** 31 - 1; }
      const feeds = { [inputName]: new ort.Tensor('float32', data, [batch, ...chw]) };
      for (let i = 0; i < 3; ++i) await session.run(feeds);
      const times = [];
      const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
      while (process.hrtime.bigint() < end || times.length < 3) {
        const t0 = process.hrtime.bigint();
        await session.run(feeds);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      times.sort((a, b) => a - b);
      const ms = times[Math.floor(times.length / 2)];
      const row = { engine: 'onnxruntime', model: path.basename(args.model, '.onnx'), batch, threads,
                    streams: 1, images_per_sec: batch * 1000 / ms, ms_per_batch: ms,
                    rss_bytes: process.memoryUsage().rss };
      console.log(JSON.stringify(row));
      rows.push(row);
    }
  }
  if (args.json) fs.writeFileSync(args.json, JSON.stringify(rows, null, 1));
}

main().catch((e) => { console.error(e); process.exit(1); });
