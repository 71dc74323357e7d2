/**
 * The product's own bookkeeping beside BullMQ's keys: per-job counts and per-chunk receipts, the
 * queue's chunk and token totals (capacity, /test/status, autoscaling), chunk versions and
 * fair-queuing cursors. BullMQ counts jobs in states; it has no notion of a request of many
 * chunks, of tokens, or of a receipt that outlives the job, so these few scripts are written here.
 * Each declares every key it touches (all under one hash tag), so they run on Redis Cluster too.
 *
 * Receipts are JSON objects in one hash per job, field = chunk index:
 *   s  state code (see STATE_CODES), c chunk id, e estimated tokens, o overflow policy,
 *   a  attempts, k tokens embedded, tr truncated tokens, w windows, m model, pr profile,
 *   er last error, t updated (ms), da dead since (ms).
 */

/** Receipt state codes (one letter, they are stored once per chunk). */
export const STATE_CODES = {
  queued: "q",
  running: "r",
  failed: "f",
  stored: "s",
  unchanged: "u",
  superseded: "p",
  dead: "d",
  discarded: "x",
  cancelled: "c",
} as const;

export type ReceiptCode = (typeof STATE_CODES)[keyof typeof STATE_CODES];

export const CODE_STATES: Record<ReceiptCode, keyof typeof STATE_CODES> = Object.fromEntries(
  Object.entries(STATE_CODES).map(([state, code]) => [code, state]),
) as Record<ReceiptCode, keyof typeof STATE_CODES>;

/** The states a receipt can still leave by processing: anything else is final (or dead). */
export const NOT_FINISHED: string = "qrfd";

/**
 * admit — accept a whole request or nothing, against the chunk and token bounds; idempotent by
 * job id. Allocates the request's versions (contiguous) and its fair-queuing start.
 * A replacement (of whole documents) also raises each document's floor to its first version.
 * Every document id the request carries joins the collection's document list.
 * KEYS: stats, fair, job, receipts, jobs index, admitting index, active-jobs index, the collection's
 *       documents, then one floor key per replaced document
 * ARGV: jobId, collection, n, tokens, maxChunks, maxTokens, now, share, maxRank, R (replaced
 *       documents), floorTtlMs, D (documents carried), the R replaced ids, the D carried ids, then per
 *       chunk: chunkId, estimatedTokens, overflow
 * → {"dup", total, base, rank, fill, admitted} | {"full", limit, pending, pendingTokens}
 *   | {"ok", base, rank, fill}
 */
export const ADMIT = `
local stats, fair, job, receipts, jobs, admitting, active = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local jobId, collection = ARGV[1], ARGV[2]
local n, tokens = tonumber(ARGV[3]), tonumber(ARGV[4])
local maxChunks, maxTokens, now = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local share, maxRank = tonumber(ARGV[8]), tonumber(ARGV[9])
local replaced, floorTtl, carried = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local first = 13 + replaced + carried
if redis.call('EXISTS', job) == 1 then
  local v = redis.call('HMGET', job, 'total', 'base', 'rank', 'fill', 'admitted')
  return {'dup', v[1], v[2], v[3], v[4], v[5]}
end
-- Capacity counts admissions still adding their jobs ("reserved") beside the queued chunks, but only
-- confirmed ones are shown as pending: one an API process died in the middle of never appears.
local s = redis.call('HMGET', stats, 'pending', 'pending_tokens', 'head', 'reserved', 'reserved_tokens')
local pending = (tonumber(s[1]) or 0) + (tonumber(s[4]) or 0)
local pendingTokens = (tonumber(s[2]) or 0) + (tonumber(s[5]) or 0)
local head = tonumber(s[3]) or 0
if pending + n > maxChunks then return {'full', 'chunks', pending, pendingTokens} end
if pendingTokens + tokens > maxTokens then return {'full', 'tokens', pending, pendingTokens} end
if pending == 0 then
  -- Nothing waits: every collection starts afresh, so ranks do not grow without bound.
  redis.call('DEL', fair)
  head = 0
  redis.call('HSET', stats, 'head', 0)
end
local rank, fill = head, 0
local last = redis.call('HGET', fair, collection)
if last then
  local lr, lf = string.match(last, '^(%d+):(%d+)$')
  if tonumber(lr) >= head then rank, fill = tonumber(lr), tonumber(lf) end
end
local endRank = math.min(rank + math.floor((fill + n - 1) / share), maxRank)
local endFill = ((fill + n - 1) % share) + 1
redis.call('HSET', fair, collection, endRank .. ':' .. endFill)
local base = redis.call('HINCRBY', stats, 'version', n) - n + 1
redis.call('HSET', job, 'collection', collection, 'total', n, 'tokens', tokens, 'base', base,
  'rank', rank, 'fill', fill, 'created', now, 'updated', now, 'admitted', 0,
  'queued', n, 'running', 0, 'failed', 0, 'stored', 0, 'unchanged', 0, 'superseded', 0,
  'dead', 0, 'discarded', 0, 'cancelled', 0)
local fields = {}
for i = 0, n - 1 do
  local a = first + i * 3
  fields[#fields + 1] = i
  fields[#fields + 1] = cjson.encode({s = 'q', c = ARGV[a], e = tonumber(ARGV[a + 1]), o = ARGV[a + 2], a = 0, t = now})
  if #fields >= 2000 then
    redis.call('HSET', receipts, unpack(fields))
    fields = {}
  end
end
if #fields > 0 then redis.call('HSET', receipts, unpack(fields)) end
if replaced > 0 then
  local docs = {}
  for d = 1, replaced do
    docs[d] = ARGV[12 + d]
    local floorKey = KEYS[8 + d]
    local current = redis.call('GET', floorKey)
    local cv = current and tonumber(string.match(current, '^(%d+):')) or nil
    if not cv or cv < base then redis.call('SET', floorKey, base .. ':replace', 'PX', floorTtl) end
  end
  redis.call('HSET', job, 'docs', cjson.encode(docs), 'floor', base)
end
for d = 1, carried do redis.call('ZADD', KEYS[8], 0, ARGV[12 + replaced + d]) end
redis.call('HINCRBY', stats, 'reserved', n)
redis.call('HINCRBY', stats, 'reserved_tokens', tokens)
redis.call('ZADD', jobs, now, jobId)
redis.call('ZADD', active, now, jobId)
redis.call('ZADD', admitting, now, jobId)
return {'ok', base, rank, fill}
`;

/**
 * floor — raise a document's floor to a fresh version (a delete): its older chunks are cancelled.
 * The document leaves the collection's document list.
 * KEYS: stats, floor key, the collection's documents · ARGV: floorTtlMs, documentId
 * → the floor, "version:kind"
 */
export const DELETE_FLOOR = `
redis.call('ZREM', KEYS[3], ARGV[2])
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
local current = redis.call('GET', KEYS[2])
local cv = current and tonumber(string.match(current, '^(%d+):')) or nil
if not cv or cv < version then
  redis.call('SET', KEYS[2], version .. ':delete', 'PX', tonumber(ARGV[1]))
  return version .. ':delete'
end
return current
`;

/**
 * finalized — a replacement's old points were deleted: recorded once (the first result stays).
 * KEYS: job, finalizations · ARGV: jobId, deletedPoints, deletedChunkIds (JSON)
 */
export const FINALIZED = `
if redis.call('EXISTS', KEYS[1]) == 1 and not redis.call('HGET', KEYS[1], 'fin') then
  redis.call('HSET', KEYS[1], 'fin', 1, 'deleted', ARGV[2], 'deletedIds', ARGV[3])
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`;

/**
 * confirm — the request's BullMQ jobs exist: the admission is complete, its chunks count as
 * pending (they were only reserved capacity until now). Once only. Chunks that workers already
 * finished before the confirmation (transition counted them as "early") left the reservation then.
 * KEYS: job, admitting, stats · ARGV: jobId
 */
export const CONFIRM = `
local v = redis.call('HMGET', KEYS[1], 'admitted', 'total', 'tokens', 'early', 'early_tokens')
if v[1] ~= '0' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], 'admitted', 1)
redis.call('ZREM', KEYS[2], ARGV[1])
local n = tonumber(v[2]) - (tonumber(v[4]) or 0)
local tokens = tonumber(v[3]) - (tonumber(v[5]) or 0)
redis.call('HINCRBY', KEYS[3], 'reserved', -n)
redis.call('HINCRBY', KEYS[3], 'reserved_tokens', -tokens)
redis.call('HINCRBY', KEYS[3], 'pending', n)
redis.call('HINCRBY', KEYS[3], 'pending_tokens', tokens)
return 1
`;

/**
 * rollback — an admission whose BullMQ jobs were never added (the API died in between): give back
 * its capacity and forget it. Does nothing to a confirmed admission; answers -1 (and does nothing)
 * when a receipt of it moved, which only a worker holding one of its jobs can do: confirm it instead.
 * KEYS: stats, job, receipts, dead-of-job, jobs index, admitting index, active-jobs index · ARGV: jobId
 */
export const ROLLBACK = `
local v = redis.call('HMGET', KEYS[2], 'admitted', 'total', 'tokens', 'queued', 'early')
if v[1] ~= '0' then
  redis.call('ZREM', KEYS[6], ARGV[1])
  return 0
end
-- A receipt that moved means a worker had its chunk: the jobs were added after all.
if v[4] ~= v[2] or (tonumber(v[5]) or 0) ~= 0 then return -1 end
redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(v[2]))
redis.call('HINCRBY', KEYS[1], 'reserved_tokens', -tonumber(v[3]))
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
return 1
`;

/**
 * transition — move receipts to a new state, keeping every count equal to what the receipts say
 * (any state to any other: the counts follow from the two states alone). An entry applies only if
 * its receipt is in one of the `allowed` states and, when asked, only if the BullMQ lock is ours
 * (lockMode 1: the lease still holds the chunk) or gone (lockMode 2: nobody holds it). A job with
 * nothing left to do expires after its retention (plus the dead letters' retention while it holds
 * some); one with work again (a replay) is kept.
 * A replacement job that becomes done is queued for the cleanup of its documents' old points.
 * KEYS: stats, dead (by seq), dead-by-time, active-jobs index, finalizations, then (job, receipts,
 *       dead-of-job) per job slot, then the lock keys the entries name
 * ARGV (per slot, in order, after the entries): the slot's job id
 * ARGV: now, token, jobRetentionMs, deadRetentionMs, headRank, jobSlots, entries, then per entry:
 *       slot, index, to, allowed, lockMode, lockKeyIndex, bullJobId, seq, fieldsJson
 * → per entry: "ok" | "skip:<state>" | "fenced" | "missing"
 */
export const TRANSITION = `
local now, token = tonumber(ARGV[1]), ARGV[2]
local jobRet, deadRet, head = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local slots, entries = tonumber(ARGV[6]), tonumber(ARGV[7])
local stats, dead, deadByTime, active, finalize = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local COUNTER = {q = 'queued', r = 'running', f = 'failed', s = 'stored', u = 'unchanged',
  p = 'superseded', d = 'dead', x = 'discarded', c = 'cancelled'}
local PENDING = {q = 1, r = 1, f = 1}
local function pend(state) return PENDING[state] or 0 end
local function is(state, code) if state == code then return 1 end return 0 end
local touched = {}
local out = {}
local a = 8
for e = 1, entries do
  local slot, index, to, allowed = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local lockMode, lockIdx, bullId = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), ARGV[a + 6]
  local seq, fields = tonumber(ARGV[a + 7]), ARGV[a + 8]
  a = a + 9
  local base = 5 + (slot - 1) * 3
  local job, receipts, jobDead = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]
  local raw = redis.call('HGET', receipts, index)
  if not raw then
    -- The job record expired before one of its dead letters was discarded: the dead-letter index
    -- still counts it, so the global count follows the index.
    if to == 'x' and redis.call('ZREM', dead, bullId) == 1 then
      redis.call('ZREM', deadByTime, bullId)
      redis.call('HINCRBY', stats, 'dead', -1)
    end
    out[e] = 'missing'
  else
    local r = cjson.decode(raw)
    local cur = r.s
    if allowed ~= '*' and not string.find(allowed, cur, 1, true) then
      out[e] = 'skip:' .. cur
    elseif lockMode == 1 and redis.call('GET', KEYS[lockIdx]) ~= token then
      out[e] = 'fenced'
    elseif lockMode == 2 and redis.call('EXISTS', KEYS[lockIdx]) == 1 then
      out[e] = 'fenced'
    else
      if fields ~= '' then
        for k, v in pairs(cjson.decode(fields)) do
          if v == cjson.null then r[k] = nil else r[k] = v end
        end
      end
      r.s = to
      r.t = now
      if to == 'd' then r.da = now elseif cur == 'd' then r.da = nil end
      redis.call('HSET', receipts, index, cjson.encode(r))
      if cur ~= to then
        redis.call('HINCRBY', job, COUNTER[cur], -1)
        redis.call('HINCRBY', job, COUNTER[to], 1)
        local est = tonumber(r.e) or 0
        local dp = pend(to) - pend(cur)
        if dp ~= 0 then
          if redis.call('HGET', job, 'admitted') == '0' then
            -- Added but not confirmed (its API process died in between): its chunks still count
            -- as reserved capacity, not as pending, so the change goes there; confirm moves the rest.
            redis.call('HINCRBY', stats, 'reserved', dp)
            redis.call('HINCRBY', stats, 'reserved_tokens', dp * est)
            redis.call('HINCRBY', job, 'early', -dp)
            redis.call('HINCRBY', job, 'early_tokens', -dp * est)
          else
            redis.call('HINCRBY', stats, 'pending', dp)
            redis.call('HINCRBY', stats, 'pending_tokens', dp * est)
          end
        end
        local dr = is(to, 'r') - is(cur, 'r')
        if dr ~= 0 then redis.call('HINCRBY', stats, 'running', dr) end
        local dd = is(to, 'd') - is(cur, 'd')
        if dd ~= 0 then redis.call('HINCRBY', stats, 'dead', dd) end
        if to == 'd' then
          redis.call('ZADD', jobDead, seq, index)
          redis.call('ZADD', dead, seq, bullId)
          redis.call('ZADD', deadByTime, now, bullId)
        elseif cur == 'd' then
          redis.call('ZREM', jobDead, index)
          redis.call('ZREM', dead, bullId)
          redis.call('ZREM', deadByTime, bullId)
        end
      end
      redis.call('HSET', job, 'updated', now)
      touched[slot] = true
      out[e] = 'ok'
    end
  end
end
for slot in pairs(touched) do
  local base = 5 + (slot - 1) * 3
  local c = redis.call('HMGET', KEYS[base + 1], 'queued', 'running', 'failed', 'dead', 'created', 'docs', 'fin')
  local left = (tonumber(c[1]) or 0) + (tonumber(c[2]) or 0) + (tonumber(c[3]) or 0)
  local jobId = ARGV[a + slot - 1]
  if left == 0 then
    redis.call('ZREM', active, jobId)
    -- A replacement is cleaned up once all of it is stored: not while some of it is a dead letter.
    if c[6] and not c[7] and (tonumber(c[4]) or 0) == 0 then redis.call('ZADD', finalize, now, jobId) end
  else
    redis.call('ZADD', active, tonumber(c[5]) or now, jobId)
  end
  for k = 1, 3 do
    if left == 0 then
      -- A job holding dead letters outlives them (they expire after deadRet), then its own retention.
      local ttl = jobRet
      if (tonumber(c[4]) or 0) > 0 then ttl = jobRet + deadRet end
      redis.call('PEXPIRE', KEYS[base + k], ttl)
    else
      redis.call('PERSIST', KEYS[base + k])
    end
  end
end
if head > 0 then
  local h = tonumber(redis.call('HGET', stats, 'head')) or 0
  if head > h then redis.call('HSET', stats, 'head', head) end
end
return out
`;

/** Runs one of the scripts above, defined on the client under `name` (ragAdmit, ragTransition…). */
export function runScript(
  redis: object,
  name: string,
  args: ReadonlyArray<string | number>,
): Promise<unknown> {
  const command = (redis as Record<string, (...a: Array<string | number>) => Promise<unknown>>)[name];
  if (!command) throw new Error(`script ${name} is not defined`);
  // apply, not a spread through more calls: an admission passes three arguments per chunk (30,000
  // for 10,000 chunks), and every spread frame puts them all on the stack again.
  return command.apply(redis, args as Array<string | number>);
}
