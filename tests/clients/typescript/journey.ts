// The whole journey of a TypeScript app, written against the SDK that @hey-api/openapi-ts
// generates from the committed openapi.json (into ./client, beside this file, at test time).
//
// Usage: node dist/journey.js <base-url>
//
// The test (tests/test_typescript_client.py) supplies what only the server side can: the
// verification mail and a second, verified user. The journey asks for them with one JSON line
// on stdout ({"need": "mail", "to": ...} or {"need": "user"}) and reads one JSON line answer
// from stdin ({"text": ...} or {"email": ..., "password": ...}). Its last stdout line is
// {"done": true, "checks": N}. Everything else it says goes to stderr.

import { createInterface } from 'node:readline';

import { type Client, createClient, createConfig } from './client/client/index.js';
import {
  authLogout,
  authMe,
  authRefresh,
  authRegister,
  authSignin,
  authVerify,
  type BookIn,
  type BookOut,
  booksCreate,
  booksGet,
  booksList,
  booksUpdate,
  type ErrorEnvelope,
  notificationsList,
  reviewsCreate,
  type TokenPair,
} from './client/index.js';

const REQUEST_TIMEOUT_MS = 15_000;
const ANSWER_TIMEOUT_MS = 30_000;
const PASSWORD = 'a-long-typescript-password';

const baseUrl = process.argv[2];
if (!baseUrl) {
  throw new Error('usage: node dist/journey.js <base-url>');
}

// ---- checks -------------------------------------------------------------------------------

let checks = 0;

function show(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function check(condition: boolean, what: string, detail?: unknown): asserts condition {
  if (!condition) {
    throw new Error(`check failed: ${what}${detail === undefined ? '' : ` (got ${show(detail)})`}`);
  }
  checks += 1;
  log(`ok ${checks}: ${what}`);
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** The body of a successful call, after checking the status it must have. */
function expect<T>(
  what: string,
  status: number,
  result: { data?: T; error?: unknown; response: Response },
): T {
  check(
    result.response.status === status,
    `${what}: HTTP ${status}`,
    `${result.response.status} ${show(result.error ?? rawBodies.get(result.response))}`,
  );
  check(result.data !== undefined, `${what}: a body`);
  return result.data;
}

// The error types the contract names: a union when it lists them (a typo, or one it drops,
// fails the compile), plain `string` when it does not.
type ErrorTypeName = ErrorEnvelope['error']['type'];

/** The error envelope of a refused call, after checking its status and error type. */
function expectError(
  what: string,
  status: number,
  type: ErrorTypeName,
  result: { error?: ErrorEnvelope; response: Response },
): ErrorEnvelope {
  check(result.response.status === status, `${what}: HTTP ${status}`, result.response.status);
  const envelope = result.error;
  check(envelope !== undefined && typeof envelope.error === 'object', `${what}: an error envelope`,
    rawBodies.get(result.response));
  check(envelope.error.type === type, `${what}: error.type == "${type}"`, envelope.error.type);
  return envelope;
}

// ---- the line protocol with the test ------------------------------------------------------

const input = createInterface({ input: process.stdin, crlfDelay: Infinity });
const answers = input[Symbol.asyncIterator]();

async function ask(request: { need: 'mail'; to: string } | { need: 'user' }): Promise<unknown> {
  process.stdout.write(`${JSON.stringify(request)}\n`);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer to ${JSON.stringify(request)} in ${ANSWER_TIMEOUT_MS} ms`)),
      ANSWER_TIMEOUT_MS,
    );
  });
  try {
    const line = await Promise.race([answers.next(), timeout]);
    if (line.done) {
      throw new Error(`stdin closed before an answer to ${JSON.stringify(request)}`);
    }
    return JSON.parse(line.value) as unknown;
  } finally {
    clearTimeout(timer);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

async function mailTo(address: string): Promise<string> {
  const answer = await ask({ need: 'mail', to: address });
  if (!isRecord(answer) || typeof answer.text !== 'string') {
    throw new Error(`bad mail answer: ${show(answer)}`);
  }
  return answer.text;
}

async function anotherUser(): Promise<{ email: string; password: string }> {
  const answer = await ask({ need: 'user' });
  if (!isRecord(answer) || typeof answer.email !== 'string' || typeof answer.password !== 'string') {
    throw new Error(`bad user answer: ${show(answer)}`);
  }
  return { email: answer.email, password: answer.password };
}

// ---- clients ------------------------------------------------------------------------------

// Every response's raw body, read from a clone before the SDK parses it. The SDK has no way
// to say "this response had no body": it answers a 304 through its error path, with `{}`
// for the empty body. Only for checking that the 304 really is empty.
const rawBodies = new WeakMap<Response, string>();

async function timedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const response = await fetch(input, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  rawBodies.set(response, await response.clone().text());
  return response;
}

type Session = { access?: string };

/** A client of its own for one user; `session.access` is sent as the bearer token. */
function clientFor(session: Session): Client {
  return createClient(createConfig({ baseUrl, fetch: timedFetch, auth: () => session.access }));
}

function header(response: Response, name: string): string {
  const value = response.headers.get(name);
  check(value !== null && value !== '', `${response.url}: has ${name}`, value);
  return value;
}

// ---- the journey --------------------------------------------------------------------------

async function main(): Promise<void> {
  const anonymous = clientFor({});
  const email = `ts-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}@example.com`;

  // Register, then verify with the token from the real email.
  const registered = await authRegister({
    client: anonymous,
    body: { email, password: PASSWORD, name: 'Tess Script' },
  });
  expect('register', 202, registered);

  const mail = await mailTo(email);
  const link = /\/auth\/verify\/([^\s"'<>]+)/.exec(mail);
  check(link?.[1] !== undefined, 'the verification mail carries a /auth/verify/<token> link', mail);
  const verified = await authVerify({ client: anonymous, body: { token: link[1] } });
  check(expect('verify', 200, verified).status === 'verified', 'verify: status "verified"',
    verified.data);

  // Sign in; who am I?
  const signin = await authSignin({ client: anonymous, body: { email, password: PASSWORD } });
  let pair: TokenPair = expect('signin', 200, signin);
  check(pair.token_type === 'bearer', 'signin: a bearer token', pair.token_type);
  const owner: Session = { access: pair.access_token };
  const ownerClient = clientFor(owner);
  const me = expect('me', 200, await authMe({ client: ownerClient }));
  check(me.email === email && me.is_verified, 'me: the verified account just registered', me);

  // Create a book under an Idempotency-Key, then replay the very same request.
  const bookIn: BookIn = {
    title: 'The Dispossessed',
    authors: ['Ursula K. Le Guin'],
    isbn: '978-0-06-051275-0',
    tags: ['science fiction'],
  };
  const key = crypto.randomUUID();
  const created = await booksCreate({
    client: ownerClient,
    body: bookIn,
    headers: { 'Idempotency-Key': key },
  });
  const book: BookOut = expect('create', 201, created);
  check(book.isbn13 === '9780060512750', 'create: the ISBN normalised to ISBN-13', book.isbn13);
  // Response headers are not in the SDK's types (the contract declares them): read raw.
  const createdEtag = header(created.response, 'ETag');
  const location = header(created.response, 'Location');
  check(location.endsWith(`/books/${book.id}`), 'create: Location names the new book', location);
  check(created.response.headers.get('Idempotent-Replayed') === null,
    'create: the first answer is not marked as a replay',
    created.response.headers.get('Idempotent-Replayed'));

  const replayed = await booksCreate({
    client: ownerClient,
    body: bookIn,
    headers: { 'Idempotency-Key': key },
  });
  const again = expect('replay', 201, replayed);
  check(replayed.response.headers.get('Idempotent-Replayed') === 'true',
    'replay: Idempotent-Replayed: true', replayed.response.headers.get('Idempotent-Replayed'));
  check(again.id === book.id, 'replay: the same book, not a second one', again.id);
  check(header(replayed.response, 'ETag') === createdEtag, 'replay: the same ETag',
    replayed.response.headers.get('ETag'));
  check(header(replayed.response, 'Location') === location, 'replay: the same Location',
    replayed.response.headers.get('Location'));

  // Conditional GET: read the ETag, then If-None-Match it for a bodiless 304.
  const got = await booksGet({ client: ownerClient, path: { book_id: book.id } });
  check(expect('get', 200, got).id === book.id, 'get: the book', got.data?.id);
  const etag = header(got.response, 'ETag');
  check(etag === createdEtag, 'get: the ETag the create answered', etag);

  const notModified = await booksGet({
    client: ownerClient,
    path: { book_id: book.id },
    headers: { 'If-None-Match': etag },
  });
  // The 304 is declared in the contract, but the SDK's types know only the 200: a 304 comes
  // back on the error side, typed as an ErrorEnvelope although it has no body at all.
  check(notModified.response.status === 304, 'get If-None-Match: 304', notModified.response.status);
  check(notModified.data === undefined, 'get If-None-Match: no data', notModified.data);
  check(rawBodies.get(notModified.response) === '', 'get If-None-Match: an empty body',
    rawBodies.get(notModified.response));
  check(notModified.response.headers.get('ETag') === etag, 'get If-None-Match: the same ETag',
    notModified.response.headers.get('ETag'));

  // Optimistic concurrency: PATCH with the current ETag, then with the stale one.
  const patched = await booksUpdate({
    client: ownerClient,
    path: { book_id: book.id },
    headers: { 'If-Match': etag },
    body: { subtitle: 'An Ambiguous Utopia' },
  });
  const changed = expect('patch', 200, patched);
  check(changed.subtitle === 'An Ambiguous Utopia' && changed.version === book.version + 1,
    'patch: the change applied, the version moved on', changed);
  const newEtag = header(patched.response, 'ETag');
  check(newEtag !== etag, 'patch: a new ETag', newEtag);

  const stale = await booksUpdate({
    client: ownerClient,
    path: { book_id: book.id },
    headers: { 'If-Match': etag },
    body: { subtitle: 'A lost update' },
  });
  expectError('patch with a stale ETag', 412, 'precondition_failed', stale);
  check(stale.data === undefined, 'patch with a stale ETag: no book', stale.data);

  // More books, so that the cursor walk below has pages to turn.
  const others: string[] = [];
  for (const title of ['The Left Hand of Darkness', 'The Lathe of Heaven', 'Always Coming Home',
    'The Word for World Is Forest']) {
    const more = await booksCreate({
      client: ownerClient,
      body: { title, authors: ['Ursula K. Le Guin'] },
      headers: { 'Idempotency-Key': crypto.randomUUID() },
    });
    others.push(expect(`create "${title}"`, 201, more).id);
  }

  // A second user reviews the book; its owner is notified.
  const reader = await anotherUser();
  const readerPair = expect('reader signin', 200, await authSignin({
    client: anonymous,
    body: { email: reader.email, password: reader.password },
  }));
  const readerClient = clientFor({ access: readerPair.access_token });
  const review = expect('review', 201, await reviewsCreate({
    client: readerClient,
    path: { book_id: book.id },
    body: { rating: 5, title: 'Anarres', body: 'True journey is return.' },
  }));
  check(review.book.rating_count === 1 && review.book.rating_avg === 5,
    'review: the book\'s rating summary counts it', review.book);

  const notes = expect('notifications', 200, await notificationsList({ client: ownerClient }));
  const note = notes.items.find((item) => item.book_id === book.id);
  check(note !== undefined, 'notifications: one about the book', notes);
  check(note.kind === 'review_created', 'notifications: kind "review_created"', note.kind);
  check(note.actor_id === readerPair.user.id, 'notifications: by the reviewer', note.actor_id);

  // Search finds it, by a word of the subtitle the PATCH set.
  const found = expect('search', 200, await booksList({
    client: anonymous,
    query: { q: 'ambiguous utopia' },
  }));
  check(found.items[0]?.id === book.id, 'search: the book first', found.items.map((b) => b.title));

  // Walk every page of the catalogue, two at a time.
  const seen: string[] = [];
  let cursor: string | null | undefined;
  let pages = 0;
  do {
    const page = expect(`books page ${pages + 1}`, 200, await booksList({
      client: anonymous,
      query: cursor ? { limit: 2, cursor } : { limit: 2 },
    }));
    check(page.items.length <= 2, `books page ${pages + 1}: at most limit items`, page.items.length);
    seen.push(...page.items.map((item) => item.id));
    cursor = page.next_cursor;
    pages += 1;
    check(pages <= 50, 'the cursor walk ends', pages);
  } while (cursor);
  check(new Set(seen).size === seen.length, 'cursor walk: no book twice', seen);
  check(seen.filter((id) => id === book.id).length === 1, 'cursor walk: the book exactly once',
    seen);
  check(others.every((id) => seen.includes(id)), 'cursor walk: every other book too', seen);
  check(pages >= 3, 'cursor walk: five books in pages of two', pages);

  // Refresh: a new pair, and the new access token works.
  const refreshed = await authRefresh({
    client: anonymous,
    body: { refresh_token: pair.refresh_token },
  });
  const next = expect('refresh', 200, refreshed);
  check(next.access_token !== pair.access_token && next.refresh_token !== pair.refresh_token,
    'refresh: a new token pair');
  pair = next;
  owner.access = pair.access_token;
  check(expect('me after refresh', 200, await authMe({ client: ownerClient })).email === email,
    'me after refresh: still me');

  // Log out; the access token is dead.
  const out = await authLogout({
    client: ownerClient,
    body: { refresh_token: pair.refresh_token },
  });
  check(out.response.status === 204, 'logout: 204', out.response.status);
  expectError('me after logout', 401, 'invalid_token', await authMe({ client: ownerClient }));

  process.stdout.write(`${JSON.stringify({ done: true, checks })}\n`);
}

main().then(
  () => {
    input.close();
  },
  (error: unknown) => {
    log(error instanceof Error ? (error.stack ?? error.message) : show(error));
    process.exit(1);
  },
);
