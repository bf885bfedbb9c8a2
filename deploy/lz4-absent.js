// Stands in for lz4-napi in the function bundles (deploy/build.sh): the SLS SDK loads it at start, but the suite
// asks SLS for deflate, so it is never called. If it were, the error says why instead of a missing native binding.
const absent = () => {
  throw new Error(
    'lz4 is not shipped with the functions: SLS PullLogs must be asked for deflate (Accept-Encoding)',
  );
};
module.exports = {
  compress: absent,
  compressSync: absent,
  uncompress: absent,
  uncompressSync: absent,
  compressFrame: absent,
  compressFrameSync: absent,
  decompressFrame: absent,
  decompressFrameSync: absent,
};
