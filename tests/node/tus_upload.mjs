// Uploads a video to Reelhouse's tus endpoint with the real tus-js-client (its Node.js API), the way an
// administrator's tool would, and is interrupted on the way: after the first chunk it stops
// (upload.abort(), as a closed laptop would), then a new Upload finds the stored upload URL
// (FileUrlStorage, findPreviousUploads) and resumes from the offset the server's HEAD answers.
//
//   REELHOUSE_ADMIN_TOKEN=<administrator's access token> \
//     node tests/node/tus_upload.mjs <base URL> <video file> <content id> <URL store file>
//
// Prints one JSON document: the chunk size, the file's size, both uploads' URLs and every request
// tus-js-client made (method, status, the Upload-Offset it sent and the one it got back).
import fs from "node:fs";
import path from "node:path";
import tus from "tus-js-client";

const { Upload, FileUrlStorage } = tus;
const [baseUrl, file, contentId, storePath] = process.argv.slice(2);
const token = process.env.REELHOUSE_ADMIN_TOKEN;
if (!baseUrl || !file || !contentId || !storePath || !token) {
  console.error("usage: REELHOUSE_ADMIN_TOKEN=... node tus_upload.mjs <base URL> <file> <content id> <store>");
  process.exit(2);
}
const endpoint = new URL("/api/v1/admin/uploads", baseUrl).toString();

// The server advertises the largest PATCH body it takes (tus discovery is public): chunks are that size.
const discovery = await fetch(endpoint, { method: "OPTIONS" });
const chunkSize = Number(discovery.headers.get("tus-max-chunk-size"));
if (!(chunkSize > 0)) throw new Error(`no Tus-Max-Chunk-Size in the OPTIONS answer (${discovery.status})`);

const requests = [];

function uploadOf(phase, callbacks) {
  return new Upload(fs.createReadStream(file), {
    endpoint,
    chunkSize,
    headers: { Authorization: `Bearer ${token}` },
    metadata: { content_id: contentId, filename: path.basename(file) },
    urlStorage: new FileUrlStorage(storePath),
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    retryDelays: [], // a refusal is reported, not retried: the test wants to see it
    onAfterResponse(request, response) {
      requests.push({
        phase,
        method: request.getMethod(),
        status: response.getStatus(),
        sent_offset: request.getHeader("Upload-Offset") ?? null,
        offset: response.getHeader("Upload-Offset") ?? null,
      });
    },
    ...callbacks,
  });
}

// 1. Upload until the server has accepted the first chunk, then stop.
const interrupted = await new Promise((resolve, reject) => {
  const upload = uploadOf("interrupted", {
    onChunkComplete(_chunk, bytesAccepted) {
      upload.abort().then(() => resolve({ url: upload.url, accepted: bytesAccepted }), reject);
    },
    onSuccess: () => reject(new Error("the upload finished before it could be interrupted")),
    onError: reject,
  });
  upload.start();
});

// 2. Later, a new Upload of the same file: find the stored URL and resume where the server says.
let resumed;
const finished = new Promise((resolve, reject) => {
  resumed = uploadOf("resumed", { onSuccess: resolve, onError: reject });
});
const previous = await resumed.findPreviousUploads();
if (previous.length !== 1) throw new Error(`expected one stored upload, found ${previous.length}`);
resumed.resumeFromPreviousUpload(previous[0]);
resumed.start();
await finished;
// tus-js-client forgets a finished upload's URL (removeFingerprintOnSuccess) without waiting for it.
let leftBehind = [];
for (let attempt = 0; attempt < 20; attempt += 1) {
  leftBehind = await new FileUrlStorage(storePath).findAllUploads();
  if (leftBehind.length === 0) break;
  await new Promise((resolve) => setTimeout(resolve, 100));
}

console.log(
  JSON.stringify({
    chunk_size: chunkSize,
    size: fs.statSync(file).size,
    interrupted,
    stored_uploads_found: previous.length,
    resumed_url: resumed.url,
    stored_uploads_left: leftBehind.length,
    requests,
  }),
);
