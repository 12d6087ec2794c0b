// The DreamTree D1 Worker: one endpoint that runs a batch of SQL statements on the D1 binding
// `DB` for the Python service (app/db/d1_engine.py). Plain JavaScript module, no build step of
// our own. docs/d1.md ("The D1 transport") is the operator's side of this file.
//
//   POST /batch
//   Authorization: Bearer <DREAMTREE_D1_TOKEN>
//   Content-Type: application/json
//   {"mode": "read" | "write", "statements": [{"sql": "...", "params": [...]}], "bookmark": "..."?}
//
// 200 {"results": [{"columns": [...], "rows": [[...], ...], "changes": n, "last_row_id": n,
//                   "rows_read": n, "rows_written": n}], "bookmark": "..." | null}
//
// Anything else is an RFC 9457 problem (application/problem+json) with a `code` and an
// `outcome` that says what happened to the batch:
//   "not_run"      refused before anything ran (400, 401, 404, 405, 413, 500 no token)
//   "rolled_back"  D1 ran the batch, a statement failed, nothing was applied (409, 422);
//                  `detail` is D1's own message (guard:<name>, "UNIQUE constraint failed: …")
//   "unknown"      the Worker or D1 failed on the way; the batch may or may not have been
//                  applied (500 worker_error, 503 d1_unavailable)
//
// The statements are the service's own named SQL with `?` parameters. The Worker still checks
// what D1 would refuse (transaction statements, ATTACH, PRAGMAs outside D1's allow-list, more
// than 100 parameters, SQL over 100,000 bytes, parameters that are not null, number, string
// or boolean) so that a mistake is a clear 400 before anything runs.

const MAX_BODY_BYTES = 8 * 1024 * 1024;
const DRAIN_BYTES = 64 * 1024 * 1024; // an oversized body is read on (and dropped) up to this
const MAX_SQL_BYTES = 100_000; // D1: maximum SQL statement length
const MAX_PARAMS = 100; // D1: maximum bound parameters per query
const MAX_STATEMENTS = 1000; // Workers Paid: D1 queries per Worker invocation
const MIN_TOKEN_CHARS = 32;

// app/db/d1.py ALLOWED_PRAGMAS: the PRAGMAs D1 answers.
const ALLOWED_PRAGMAS = new Set([
  "table_list", "table_info", "table_xinfo", "index_list", "index_info", "index_xinfo",
  "foreign_key_list", "foreign_key_check", "quick_check", "data_version", "optimize",
  "foreign_keys", "defer_foreign_keys", "case_sensitive_like", "ignore_check_constraints",
  "legacy_alter_table", "recursive_triggers", "reverse_unordered_selects",
]);
const TRANSACTION_WORDS = new Set(["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"]);
const REFUSED_WORDS = new Set(["ATTACH", "DETACH", "VACUUM"]);

const encoder = new TextEncoder();

export default {
  async fetch(request, env) {
    try {
      return await handle(request, env);
    } catch (error) {
      // Never a stack trace to the caller; the message stays in wrangler's log.
      console.error("worker_error", error && error.stack ? error.stack : String(error));
      return problem(500, "worker_error", "The Worker failed; the batch may or may not have been applied.", "unknown");
    }
  },
};

async function handle(request, env) {
  // The body is read (within its cap) before any answer, even a refusal: an answer sent while
  // the body is still unread leaves the connection unusable for the next request (wrangler
  // dev's proxy then answers it 503 "Your worker restarted mid-request").
  const text = await readBody(request);
  const url = new URL(request.url);
  if (url.pathname !== "/batch") {
    return problem(404, "not_found", "The only endpoint is POST /batch.", "not_run");
  }
  if (request.method !== "POST") {
    return problem(405, "method_not_allowed", "Use POST /batch.", "not_run", { Allow: "POST" });
  }
  const configured = typeof env.DREAMTREE_D1_TOKEN === "string" ? env.DREAMTREE_D1_TOKEN.trim() : "";
  if (configured.length < MIN_TOKEN_CHARS) {
    // Closed, never open: without a usable token nobody may run SQL here.
    return problem(500, "token_not_configured",
      `DREAMTREE_D1_TOKEN is not set (or shorter than ${MIN_TOKEN_CHARS} characters); this Worker refuses every request.`,
      "not_run");
  }
  if (!(await authorised(request.headers.get("Authorization"), configured))) {
    return problem(401, "unauthorized", "A valid 'Authorization: Bearer <token>' header is required.", "not_run",
      { "WWW-Authenticate": 'Bearer realm="dreamtree-d1"' });
  }

  if (text === null) {
    return problem(413, "too_large", `The request body is larger than ${MAX_BODY_BYTES} bytes.`, "not_run");
  }
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    return problem(400, "invalid_json", "The request body is not valid JSON.", "not_run");
  }
  const request_ = parseBatch(body);
  if (typeof request_ === "string") {
    return problem(400, "bad_request", request_, "not_run");
  }
  for (let i = 0; i < request_.statements.length; i++) {
    const refusal = refuse(request_.statements[i]);
    if (refusal !== null) {
      return problem(400, "refused", `statement ${i}: ${refusal}`, "not_run", {}, { statement: i });
    }
  }
  return run(env.DB, request_);
}

// --- authentication ---------------------------------------------------------------------------

let hmacKey = null; // a promise, so that two digests at once share one key

async function digest(text) {
  // A random key per isolate: both sides are hashed to equal-length digests, so comparing them
  // takes the same time whatever the token's length or its first differing character.
  if (hmacKey === null) {
    hmacKey = crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  }
  return new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey, encoder.encode(text)));
}

async function authorised(header, configured) {
  const match = /^Bearer ([\x21-\x7e]+)$/.exec(header || "");
  const [given, expected] = await Promise.all([digest(match ? match[1] : ""), digest(configured)]);
  return equalDigests(given, expected) && match !== null;
}

function equalDigests(a, b) {
  if (typeof crypto.subtle.timingSafeEqual === "function") {
    return crypto.subtle.timingSafeEqual(a, b);
  }
  let difference = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) {
    difference |= a[i] ^ b[i];
  }
  return difference === 0;
}

// --- the request --------------------------------------------------------------------------------

async function readBody(request) {
  // The text of the body, or null when it is over the cap (counted while reading: a
  // Content-Length is only a claim; one past DRAIN_BYTES is refused before reading at all).
  const declared = Number(request.headers.get("Content-Length"));
  if (Number.isFinite(declared) && declared > DRAIN_BYTES) {
    return null;
  }
  if (request.body === null) {
    return "";
  }
  const reader = request.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      // Read the rest and drop it, so the connection stays usable for the next request
      // (wrangler dev's proxy otherwise answers that one with 503); stop at DRAIN_BYTES.
      chunks.length = 0;
      while (size <= DRAIN_BYTES) {
        const next = await reader.read();
        if (next.done) return null;
        size += next.value.byteLength;
      }
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
}

function parseBatch(body) {
  // The batch, or a string saying what is wrong with it.
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return "the body must be a JSON object {mode, statements, bookmark?}";
  }
  const { mode, statements, bookmark } = body;
  if (mode !== "read" && mode !== "write") {
    return "mode must be \"read\" or \"write\"";
  }
  if (!Array.isArray(statements) || statements.length === 0) {
    return "statements must be a non-empty array";
  }
  if (statements.length > MAX_STATEMENTS) {
    return `a batch holds at most ${MAX_STATEMENTS} statements (not ${statements.length})`;
  }
  if (bookmark !== undefined && bookmark !== null && (typeof bookmark !== "string" || bookmark.length > 200)) {
    return "bookmark must be a string from an earlier answer, or null";
  }
  const checked = [];
  for (let i = 0; i < statements.length; i++) {
    const s = statements[i];
    if (s === null || typeof s !== "object" || typeof s.sql !== "string") {
      return `statement ${i}: must be {sql: string, params: array}`;
    }
    const params = s.params === undefined ? [] : s.params;
    if (!Array.isArray(params)) {
      return `statement ${i}: params must be an array`;
    }
    checked.push({ sql: s.sql, params });
  }
  return { mode, statements: checked, bookmark: bookmark || null };
}

function refuse(statement) {
  // Why D1 would refuse this statement, or null.
  const bytes = encoder.encode(statement.sql).length;
  if (bytes > MAX_SQL_BYTES) {
    return `SQL text is ${bytes} bytes; D1 takes at most ${MAX_SQL_BYTES}`;
  }
  if (statement.params.length > MAX_PARAMS) {
    return `${statement.params.length} bound parameters; D1 binds at most ${MAX_PARAMS}`;
  }
  for (let j = 0; j < statement.params.length; j++) {
    const p = statement.params[j];
    const ok = p === null || typeof p === "string" || typeof p === "boolean" || (typeof p === "number" && Number.isFinite(p));
    if (!ok) {
      return `parameter ${j + 1} is ${Array.isArray(p) ? "an array" : typeof p}; only null, number, string and boolean are bound`;
    }
  }
  const { statements: parts, trailing } = splitStatements(statement.sql);
  if (parts.length === 0) {
    return "no SQL statement";
  }
  if (parts.length > 1) {
    return "one SQL statement per entry (this text holds several)";
  }
  if (trailing) {
    return "nothing may follow the statement's final ';' (D1 reads a comment or another ';' there as an empty statement)";
  }
  const words = parts[0];
  const first = (words[0] || "").toUpperCase();
  if (TRANSACTION_WORDS.has(first)) {
    return `transaction statement ${first}: D1 runs each batch as one transaction and refuses these`;
  }
  if (REFUSED_WORDS.has(first)) {
    return `D1 refuses ${first}`;
  }
  if (first === "PRAGMA") {
    // PRAGMA [schema.]name ...
    let name = (words[1] || "").toLowerCase();
    if (words[2] === "." && words[3]) {
      name = words[3].toLowerCase();
    }
    if (!ALLOWED_PRAGMAS.has(name)) {
      return `D1 refuses PRAGMA ${name || "(none)"}`;
    }
  }
  return null;
}

// SQLite's own sqlite3_complete() state machine (src/complete.c), used to split the text into
// statements (a CREATE TRIGGER body's semicolons included) and to find each one's first words.
const SEMI = 0, WS = 1, OTHER = 2, EXPLAIN = 3, CREATE = 4, TEMP = 5, TRIGGER = 6, END = 7;
const TRANS = [
  /* 0 INVALID */ [1, 0, 2, 3, 4, 2, 2, 2],
  /* 1 START   */ [1, 1, 2, 3, 4, 2, 2, 2],
  /* 2 NORMAL  */ [1, 2, 2, 2, 2, 2, 2, 2],
  /* 3 EXPLAIN */ [1, 3, 3, 2, 4, 2, 2, 2],
  /* 4 CREATE  */ [1, 4, 2, 2, 2, 4, 5, 2],
  /* 5 TRIGGER */ [6, 5, 5, 5, 5, 5, 5, 5],
  /* 6 SEMI    */ [6, 6, 5, 5, 5, 5, 5, 7],
  /* 7 END     */ [1, 7, 5, 5, 5, 5, 5, 5],
];

function* tokens(sql) {
  // [type, word] pairs; word is the text of identifiers/keywords and "." (for PRAGMA schema.name).
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i];
    if (c === ";") { i++; yield [SEMI, ";"]; continue; }
    if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f") { i++; yield [WS, ""]; continue; }
    if (c === "-" && sql[i + 1] === "-") {
      while (i < n && sql[i] !== "\n") i++;
      yield [WS, "--"];
      continue;
    }
    if (c === "/" && sql[i + 1] === "*") {
      const close = sql.indexOf("*/", i + 2);
      i = close < 0 ? n : close + 2;
      yield [WS, "--"];
      continue;
    }
    if (c === "'" || c === '"' || c === "`" || c === "[") {
      const closing = c === "[" ? "]" : c;
      i++;
      while (i < n) {
        if (sql[i] === closing) {
          if (closing !== "]" && sql[i + 1] === closing) { i += 2; continue; }
          break;
        }
        i++;
      }
      i++;
      yield [OTHER, ""];
      continue;
    }
    if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[j])) j++;
      const word = sql.slice(i, j);
      i = j;
      const upper = word.toUpperCase();
      const type = upper === "CREATE" ? CREATE
        : upper === "TEMP" || upper === "TEMPORARY" ? TEMP
          : upper === "TRIGGER" ? TRIGGER
            : upper === "END" ? END
              : upper === "EXPLAIN" ? EXPLAIN
                : OTHER;
      yield [type, word];
      continue;
    }
    i++;
    yield [OTHER, c === "." ? "." : ""];
  }
}

function splitStatements(sql) {
  // One list of leading words per statement in sql (empty statements skipped), and whether
  // anything but whitespace follows the last statement's ';' (D1 reads a trailing comment or a
  // second ';' as an empty statement and fails with "SQL code did not contain a statement").
  const statements = [];
  let state = 0;
  let words = [];
  let content = false;
  let trailing = false;
  for (const [type, word] of tokens(sql)) {
    const next = TRANS[state][type];
    if (type === SEMI && next === 1) {
      if (content) statements.push(words);
      else if (statements.length > 0) trailing = true;
      words = [];
      content = false;
    } else if (type !== WS) {
      content = true;
      if (word && words.length < 4) words.push(word);
    } else if (word === "--" && !content && statements.length > 0) {
      trailing = true;
    }
    state = next;
  }
  if (content) statements.push(words);
  return { statements, trailing };
}

// --- running the batch --------------------------------------------------------------------------

async function run(binding, batch) {
  // D1's Sessions API when the binding has it: reads may go to a replica that has caught up with
  // the reader's bookmark; writes go to the primary. Without it, everything goes to the primary.
  let session = null;
  if (typeof binding.withSession === "function") {
    session = binding.withSession(batch.mode === "write" ? "first-primary" : (batch.bookmark || "first-unconstrained"));
  }
  const db = session || binding;
  let answers;
  try {
    const prepared = batch.statements.map((s) => db.prepare(s.sql).bind(...s.params));
    answers = await db.batch(prepared);
  } catch (error) {
    return d1Failure(error, batch.mode);
  }
  const results = answers.map(toResult);
  const bookmark = session && typeof session.getBookmark === "function" ? session.getBookmark() : null;
  return json(200, { results, bookmark: bookmark || null });
}

function toResult(answer) {
  // D1's batch() gives each row as an object; its keys are in the statement's column order
  // (JavaScript keeps string keys in insertion order, except integer-like names such as an
  // unaliased `SELECT 1`, and D1 keeps one of two equal names). Rows go back as arrays.
  const objects = Array.isArray(answer.results) ? answer.results : [];
  const columns = objects.length > 0 ? Object.keys(objects[0]) : [];
  const rows = objects.map((row) => columns.map((name) => cell(row[name])));
  const meta = answer.meta || {};
  return {
    columns,
    rows,
    changes: meta.changes || 0,
    last_row_id: meta.last_row_id ?? null,
    rows_read: meta.rows_read ?? null,
    rows_written: meta.rows_written ?? null,
  };
}

function cell(value) {
  // BLOBs come back from D1 as arrays of bytes; the service stores none, but say so plainly.
  if (value instanceof ArrayBuffer) return Array.from(new Uint8Array(value));
  return value === undefined ? null : value;
}

function d1Failure(error, mode) {
  const message = String(error && error.message ? error.message : error);
  const cause = error && error.cause && error.cause.message ? String(error.cause.message) : message;
  if (/constraint failed|SQLITE_CONSTRAINT/i.test(cause)) {
    return problem(409, "constraint_failed", cause, "rolled_back");
  }
  if (/guard:[a-z]/.test(cause) && /JSON path/i.test(cause)) {
    return problem(409, "guard_failed", cause, "rolled_back");
  }
  if (isSqlError(cause)) {
    return problem(422, "sql_error", cause, "rolled_back");
  }
  // Not an error in the SQL: D1 itself (overloaded, reset, network). A read applied nothing;
  // a write may or may not have been applied.
  console.error("d1_unavailable", message);
  return problem(503, "d1_unavailable", cause, mode === "read" ? "not_run" : "unknown", { "Retry-After": "1" });
}

function isSqlError(message) {
  return /SQLITE_[A-Z]|did not contain a statement|D1_TYPE_ERROR|no such (table|column|function|index)|syntax error|not authorized|near "|incomplete input|too many|malformed JSON|JSON path|datatype mismatch|misuse|UNIQUE|FOREIGN KEY|NOT NULL|CHECK/.test(message);
}

// --- answers -----------------------------------------------------------------------------------

const TITLES = {
  400: "Bad request",
  401: "Unauthorized",
  404: "Not found",
  405: "Method not allowed",
  409: "Conflict",
  413: "Request too large",
  422: "The batch failed",
  500: "Worker error",
  503: "D1 unavailable",
};

function problem(status, code, detail, outcome, headers = {}, extra = {}) {
  const body = { type: "about:blank", status, title: TITLES[status] || "Error", detail, code, outcome, ...extra };
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/problem+json", "Cache-Control": "no-store", ...headers },
  });
}

function json(status, body) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", "Cache-Control": "no-store" },
  });
}
