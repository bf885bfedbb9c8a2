// The child side of fc-runtime.ts: loads one built function bundle and answers invocations over IPC, as FC's
// Node.js runtime calls `index.handler(event, context)` with the event as a Buffer. Plain JavaScript, so the
// process runs the bundle with nothing of the test's toolchain loaded.
const [file, exported] = process.argv.slice(2);
const handler = require(file)[exported];
if (typeof handler !== 'function') {
  process.stderr.write(`${file} exports no function ${exported}\n`);
  process.exit(3);
}
process.on('message', async (m) => {
  try {
    const result = await handler(Buffer.from(m.event, 'base64'), m.context);
    process.send({ id: m.id, result: result ?? null });
  } catch (e) {
    process.send({ id: m.id, error: { name: e?.name ?? 'Error', message: e?.message ?? String(e) } });
  }
});
process.on('disconnect', () => process.exit(0));
