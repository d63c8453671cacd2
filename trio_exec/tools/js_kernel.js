// The js_repl kernel: run by `node -e` in the environment, driven over stdin/stdout.
//
// Protocol (trio_exec/tools/js_repl.py is the other side):
// - stdin, line 1: a secret token; then one JSON request per line: {"id": n, "code": "..."}.
// - stdout: each reply is "\n" + "\x1e" + token + ":" + JSON + "\n", the JSON being
//   {"id", "ok", "output", "value"} or {"id", "ok": false, "output", "error"}.
// - Everything the code prints (console.*, process.stdout/stderr.write) is captured into the
//   reply's "output", so it travels inside the JSON; bytes that reach stdout some other way
//   (fs.writeSync(1, ...)) cannot carry the token, so they can never pass for a reply.
// - Code is evaluated by Node's own REPL evaluator in the global context: declarations persist
//   between requests and top-level await works.
'use strict';
const repl = require('node:repl');
const util = require('node:util');
const readline = require('node:readline');
const { PassThrough } = require('node:stream');

const realWrite = process.stdout.write.bind(process.stdout);
let captured = [];
function capture(chunk, encoding, callback) {
  captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
  const done = typeof encoding === 'function' ? encoding : callback;
  if (typeof done === 'function') process.nextTick(done);
  return true;
}
process.stdout.write = capture;
process.stderr.write = capture;
process.on("uncaughtException", (err) => captured.push(`Uncaught ${describe(err)}\n`));
process.on('unhandledRejection', (err) => captured.push(`Uncaught (in promise) ${describe(err)}\n`));

// An error's stack, without the kernel's own frames (from the evaluator's call on down).
function describe(err) {
  if (!(err instanceof Error) || !err.stack) return util.inspect(err);
  const lines = err.stack.split('\n');
  const ours = lines.findIndex((line) => /\((node:vm|node:repl|node:internal\/vm)[:)]/.test(line));
  return (ours === -1 ? lines : lines.slice(0, ours)).join('\n');
}

const sink = new PassThrough();
sink.resume();
const server = repl.start({ input: new PassThrough(), output: sink, terminal: false,
                            useGlobal: true, prompt: '' });

let token = null;
const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
let queue = Promise.resolve();
lines.on('line', (line) => {
  if (token === null) {
    token = line.trim();
    return;
  }
  queue = queue.then(() => evaluate(JSON.parse(line)));
});
lines.on('close', () => process.exit(0));

function reply(message) {
  realWrite(`\n\x1e${token}:${JSON.stringify(message)}\n`);
}

// Node's evaluator reports an error thrown by the code (or a rejected top-level await) on the
// REPL's domain instead of its callback; both end the request in progress. An error raised
// later by a timer or promise the code left behind lands in the next request's output.
let finish = null;
server._domain.on('error', (err) => {
  if (finish !== null) finish(err, undefined, true);
  else captured.push(`Uncaught ${describe(err)}\n`);
});

function evaluate(request) {
  captured = [];
  return new Promise((resolve) => {
    finish = (err, value, thrown) => {
      finish = null;
      const output = captured.join('');
      captured = [];
      if (thrown || err) {
        const cause = err instanceof repl.Recoverable ? err.err : err;
        reply({ id: request.id, ok: false, output, error: describe(cause) });
      } else {
        const shown = value === undefined ? null : util.inspect(value);
        reply({ id: request.id, ok: true, output, value: shown });
      }
      resolve();
    };
    server.eval(request.code, server.context, 'js_repl', (err, value) => {
      if (finish !== null) finish(err, value, false);
    });
  });
}
