/**
 * Lua scripts of the Redis queue. Each queue operation is one script, so Redis runs it atomically
 * (the equivalent of one SQLite transaction) and, with `appendfsync always`, writes it to the AOF
 * before replying. KEYS[1] is the key prefix; every key is derived from it inside the scripts, so a
 * deployment must use a single Redis (not Cluster, unless the prefix holds a hash tag like `{rag}:`).
 *
 * Keys under the prefix P:
 *   P seq                      INCR counter: chunk sequence numbers
 *   P counters                 hash: pending, pending_tokens, running, dead
 *   P job:<id>                 hash: collection, total, queued, running, stored, unchanged, dead,
 *                              discarded, created_at, updated_at
 *   P job:<id>:chunks          zset seq→seq: every chunk of the job (receipts)
 *   P job:<id>:dead            zset seq→seq: the job's dead letters
 *   P chunk:<seq>              hash: the chunk and its state (see ENQUEUE)
 *   P ready                    zset seq→seq: queued chunks available now (FIFO by seq)
 *   P delayed                  zset available_at→seq: queued chunks waiting for a retry delay
 *   P running                  zset lease_expires_at→seq: leased chunks
 *   P lease:<id>               set of seqs held by a lease
 *   P dead                     zset seq→seq: all dead letters
 *   P key:<len>:<coll>:<id>:inflight  zset of seqs of one (collection, chunk id) queued or running
 *   P key:<len>:<coll>:<id>:live      zset of seqs of one (collection, chunk id) not dead/discarded
 *
 * Time: ARGV[1] is the caller's clock in ms, or '' to use the Redis server's clock (TIME), so that
 * several processes on several hosts share one clock for leases and retry delays.
 */

const PRELUDE = `
local P = KEYS[1]
local function fmt(n) return string.format('%d', n) end
local function now_ms(arg)
  if arg ~= nil and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ck(seq) return P .. 'chunk:' .. seq end
local function jk(id) return P .. 'job:' .. id end
local function lk(id) return P .. 'lease:' .. id end
local function kk(collection, chunkId)
  return P .. 'key:' .. string.len(collection) .. ':' .. collection .. ':' .. chunkId
end
local READY = P .. 'ready'
local DELAYED = P .. 'delayed'
local RUNNING = P .. 'running'
local DEAD = P .. 'dead'
local COUNTERS = P .. 'counters'

local job_deltas = {}
local global_deltas = {}
local function jd(jobId, field, d)
  local t = job_deltas[jobId]
  if not t then t = {}; job_deltas[jobId] = t end
  t[field] = (t[field] or 0) + d
end
local function gd(field, d) global_deltas[field] = (global_deltas[field] or 0) + d end
local function flush(now)
  for jobId, t in pairs(job_deltas) do
    local k = jk(jobId)
    for field, d in pairs(t) do
      if d ~= 0 then redis.call('HINCRBY', k, field, d) end
    end
    redis.call('HSET', k, 'updated_at', fmt(now))
  end
  for field, d in pairs(global_deltas) do
    if d ~= 0 then redis.call('HINCRBY', COUNTERS, field, d) end
  end
  job_deltas = {}
  global_deltas = {}
end

-- A leased chunk leaves its lease (ack, fail, release, reclaim).
local function unlease(seq, leaseId)
  redis.call('ZREM', RUNNING, seq)
  if leaseId then redis.call('SREM', lk(leaseId), seq) end
  redis.call('HDEL', ck(seq), 'lease_id', 'lease_expires_at')
end

-- running -> dead (retries or stalls ran out).
local function to_dead(seq, jobId, collection, chunkId, est, reason, now)
  redis.call('HSET', ck(seq), 'state', 'dead', 'last_error', reason, 'dead_at', fmt(now), 'updated_at', fmt(now))
  local key = kk(collection, chunkId)
  redis.call('ZREM', key .. ':inflight', seq)
  redis.call('ZREM', key .. ':live', seq)
  redis.call('ZADD', DEAD, seq, seq)
  redis.call('ZADD', jk(jobId) .. ':dead', seq, seq)
  jd(jobId, 'running', -1); jd(jobId, 'dead', 1)
  gd('running', -1); gd('pending', -1); gd('pending_tokens', -est); gd('dead', 1)
end

-- Leases past their expiry: back to ready, counting a stall; dead at maxStalls.
local function reclaim(now, maxStalls)
  local expired = redis.call('ZRANGEBYSCORE', RUNNING, '-inf', fmt(now))
  for _, seq in ipairs(expired) do
    local c = ck(seq)
    local f = redis.call('HMGET', c, 'job_id', 'collection', 'chunk_id', 'est_tokens', 'stalls', 'lease_id')
    local stalls = tonumber(f[5] or '0') + 1
    unlease(seq, f[6])
    redis.call('HSET', c, 'stalls', fmt(stalls))
    if stalls >= maxStalls then
      to_dead(seq, f[1], f[2], f[3], tonumber(f[4]),
        'worker stopped while processing this chunk ' .. fmt(stalls) .. ' times (crash, kill or lease timeout)', now)
    else
      redis.call('HSET', c, 'state', 'queued', 'updated_at', fmt(now))
      redis.call('ZADD', READY, seq, seq)
      jd(f[1], 'running', -1); jd(f[1], 'queued', 1); gd('running', -1)
    end
  end
end

-- Delayed retries whose time has come join the ready set (at their seq: FIFO is by enqueue order).
local function promote(now)
  local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', fmt(now))
  for _, seq in ipairs(due) do redis.call('ZADD', READY, seq, seq) end
  if #due > 0 then redis.call('ZREMRANGEBYSCORE', DELAYED, '-inf', fmt(now)) end
end

-- Which dead letters a replay or discard applies to: ARGV[2] mode, ARGV[3] job id, ARGV[4..] seqs.
local function selected()
  local mode = ARGV[2]
  if mode == 'all' then return redis.call('ZRANGE', DEAD, 0, -1) end
  if mode == 'job' then return redis.call('ZRANGE', jk(ARGV[3]) .. ':dead', 0, -1) end
  local out = {}
  for i = 4, #ARGV do out[#out + 1] = ARGV[i] end
  return out
end
`;

/** ARGV: now, maxQueueSize, jobId, collection, n, then 8 per chunk. Returns {1} or {0, pending}. */
const ENQUEUE = `
local now = now_ms(ARGV[1])
local max = tonumber(ARGV[2])
local jobId = ARGV[3]
local collection = ARGV[4]
local n = tonumber(ARGV[5])
-- ioredis re-sends a command whose reply a dropped connection lost: the job exists, so this request
-- was accepted by the first run. Accepting it again would enqueue every chunk twice.
if redis.call('EXISTS', jk(jobId)) == 1 then return {1} end
local pending = tonumber(redis.call('HGET', COUNTERS, 'pending') or '0')
if pending + n > max then return {0, fmt(pending)} end
local nowS = fmt(now)
local jobChunks = jk(jobId) .. ':chunks'
local tokens = 0
for i = 0, n - 1 do
  local b = 6 + i * 8
  local seq = fmt(redis.call('INCR', P .. 'seq'))
  local chunkId = ARGV[b]
  tokens = tokens + tonumber(ARGV[b + 5])
  redis.call('HSET', ck(seq), 'job_id', jobId, 'collection', collection, 'chunk_id', chunkId,
    'text', ARGV[b + 3], 'payload', ARGV[b + 4], 'est_tokens', ARGV[b + 5], 'overflow', ARGV[b + 6],
    'overlap_tokens', ARGV[b + 7], 'state', 'queued', 'attempts', '0', 'stalls', '0',
    'available_at', nowS, 'created_at', nowS, 'updated_at', nowS)
  if ARGV[b + 1] == '1' then redis.call('HSET', ck(seq), 'document_id', ARGV[b + 2]) end
  redis.call('ZADD', READY, seq, seq)
  redis.call('ZADD', jobChunks, seq, seq)
  local key = kk(collection, chunkId)
  redis.call('ZADD', key .. ':inflight', seq, seq)
  redis.call('ZADD', key .. ':live', seq, seq)
end
redis.call('HSET', jk(jobId), 'collection', collection, 'total', n, 'queued', n, 'running', 0,
  'stored', 0, 'unchanged', 0, 'dead', 0, 'discarded', 0, 'created_at', nowS, 'updated_at', nowS)
redis.call('HINCRBY', COUNTERS, 'pending', n)
redis.call('HINCRBY', COUNTERS, 'pending_tokens', tokens)
return {1}
`;

/**
 * ARGV: now, maxChunks, maxTokens, leaseMs, leaseId, maxStalls, maxScan.
 * Returns {} or {expiresAt, {seq, job_id, collection, chunk_id, document_id, text, payload,
 * est_tokens, attempts, overflow, overlap_tokens}...}.
 */
const RESERVE = `
local now = now_ms(ARGV[1])
local maxChunks = tonumber(ARGV[2])
local maxTokens = tonumber(ARGV[3])
local leaseMs = tonumber(ARGV[4])
local leaseId = ARGV[5]
local maxStalls = tonumber(ARGV[6])
local maxScan = tonumber(ARGV[7])

-- A re-sent reserve (see ENQUEUE): hand back what the first run took under this lease instead of
-- taking more chunks that the worker would never hear of.
if redis.call('EXISTS', lk(leaseId)) == 1 then
  local held = {}
  local heldUntil = '0'
  for _, seq in ipairs(redis.call('SMEMBERS', lk(leaseId))) do
    local f = redis.call('HMGET', ck(seq), 'state', 'lease_id', 'lease_expires_at', 'job_id', 'collection',
      'chunk_id', 'document_id', 'text', 'payload', 'est_tokens', 'attempts', 'overflow', 'overlap_tokens')
    if f[1] == 'running' and f[2] == leaseId then
      heldUntil = f[3]
      held[#held + 1] = {seq, f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12], f[13]}
    end
  end
  if #held == 0 then return {} end
  table.sort(held, function(a, b) return tonumber(a[1]) < tonumber(b[1]) end)
  table.insert(held, 1, heldUntil)
  return held
end

reclaim(now, maxStalls)
promote(now)

local taken = {}
local tokens = 0
local scanned = 0
local offset = 0
local page = math.min(math.max(64, maxChunks * 2), maxScan)
local stop = false
while not stop and scanned < maxScan do
  local seqs = redis.call('ZRANGE', READY, offset, offset + page - 1)
  for _, seq in ipairs(seqs) do
    scanned = scanned + 1
    local f = redis.call('HMGET', ck(seq), 'collection', 'chunk_id', 'est_tokens')
    -- Only the oldest version of a (collection, chunk id) in flight may run: a later version waits
    -- while an older one is running or queued (also for a retry), and never joins it in one lease.
    local oldest = redis.call('ZRANGE', kk(f[1], f[2]) .. ':inflight', 0, 0)[1]
    if oldest == seq then
      local est = tonumber(f[3])
      -- FIFO: stop at a chunk that does not fit rather than let smaller later ones overtake it.
      if #taken > 0 and tokens + est > maxTokens then stop = true; break end
      taken[#taken + 1] = seq
      tokens = tokens + est
      if #taken >= maxChunks then stop = true; break end
    end
  end
  offset = offset + #seqs
  if #seqs < page then stop = true end
end

if #taken == 0 then
  flush(now)
  return {}
end
local expires = now + leaseMs
local out = {fmt(expires)}
for _, seq in ipairs(taken) do
  local c = ck(seq)
  redis.call('HSET', c, 'state', 'running', 'lease_id', leaseId, 'lease_expires_at', fmt(expires),
    'updated_at', fmt(now))
  redis.call('ZREM', READY, seq)
  redis.call('ZADD', RUNNING, expires, seq)
  redis.call('SADD', lk(leaseId), seq)
  local f = redis.call('HMGET', c, 'job_id', 'collection', 'chunk_id', 'document_id', 'text', 'payload',
    'est_tokens', 'attempts', 'overflow', 'overlap_tokens')
  jd(f[1], 'queued', -1); jd(f[1], 'running', 1); gd('running', 1)
  out[#out + 1] = {seq, f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10]}
end
flush(now)
return out
`;

/** ARGV: now, leaseId, leaseMs. Returns how many chunks the lease still holds. */
const RENEW = `
local now = now_ms(ARGV[1])
local leaseId = ARGV[2]
local expires = now + tonumber(ARGV[3])
local held = 0
for _, seq in ipairs(redis.call('SMEMBERS', lk(leaseId))) do
  local c = ck(seq)
  local f = redis.call('HMGET', c, 'state', 'lease_id')
  if f[1] == 'running' and f[2] == leaseId then
    redis.call('HSET', c, 'lease_expires_at', fmt(expires), 'updated_at', fmt(now))
    redis.call('ZADD', RUNNING, expires, seq)
    held = held + 1
  else
    redis.call('SREM', lk(leaseId), seq)
  end
end
return held
`;

/** ARGV: leaseId, seqs... Returns the seqs still running under this lease (read only). */
const HELD = `
local leaseId = ARGV[1]
local out = {}
for i = 2, #ARGV do
  local f = redis.call('HMGET', ck(ARGV[i]), 'state', 'lease_id')
  if f[1] == 'running' and f[2] == leaseId then out[#out + 1] = ARGV[i] end
end
return out
`;

/** ARGV: now, leaseId, n, then 7 per outcome: seq, state, tokens, truncated, windows, model, profile. */
const ACK = `
local now = now_ms(ARGV[1])
local leaseId = ARGV[2]
local n = tonumber(ARGV[3])
for i = 0, n - 1 do
  local b = 4 + i * 7
  local seq = ARGV[b]
  local state = ARGV[b + 1]
  local c = ck(seq)
  local f = redis.call('HMGET', c, 'state', 'lease_id', 'job_id', 'collection', 'chunk_id', 'est_tokens')
  if f[1] == 'running' and f[2] == leaseId then
    unlease(seq, leaseId)
    redis.call('HSET', c, 'state', state, 'model', ARGV[b + 5], 'profile', ARGV[b + 6], 'updated_at', fmt(now))
    if state == 'stored' then
      redis.call('HSET', c, 'tokens', ARGV[b + 2], 'truncated_tokens', ARGV[b + 3], 'windows', ARGV[b + 4])
    end
    -- Written chunks are never handed out again: their text and payload now live in the store.
    redis.call('HDEL', c, 'text', 'payload', 'document_id')
    redis.call('ZREM', kk(f[4], f[5]) .. ':inflight', seq)
    jd(f[3], 'running', -1); jd(f[3], state, 1)
    gd('running', -1); gd('pending', -1); gd('pending_tokens', -tonumber(f[6]))
  end
end
flush(now)
return 1
`;

/** ARGV: now, leaseId, error, retryDelayMs, maxAttempts, seqs... */
const FAIL = `
local now = now_ms(ARGV[1])
local leaseId = ARGV[2]
local err = ARGV[3]
local delay = tonumber(ARGV[4])
local maxAttempts = tonumber(ARGV[5])
for i = 6, #ARGV do
  local seq = ARGV[i]
  local c = ck(seq)
  local f = redis.call('HMGET', c, 'state', 'lease_id', 'job_id', 'collection', 'chunk_id', 'est_tokens', 'attempts')
  if f[1] == 'running' and f[2] == leaseId then
    unlease(seq, leaseId)
    local attempts = tonumber(f[7]) + 1
    redis.call('HSET', c, 'attempts', fmt(attempts))
    if attempts >= maxAttempts then
      to_dead(seq, f[3], f[4], f[5], tonumber(f[6]), err, now)
    else
      local at = now + delay
      redis.call('HSET', c, 'state', 'queued', 'available_at', fmt(at), 'last_error', err, 'updated_at', fmt(now))
      redis.call('ZADD', DELAYED, at, seq)
      -- Marks the job as one with retries, so GET_JOB counts retrying chunks only for such jobs.
      redis.call('HSET', jk(f[3]), 'retried', '1')
      jd(f[3], 'running', -1); jd(f[3], 'queued', 1); gd('running', -1)
    end
  end
end
flush(now)
return 1
`;

/** ARGV: now, leaseId. Returns how many chunks went back. */
const RELEASE = `
local now = now_ms(ARGV[1])
local leaseId = ARGV[2]
local released = 0
for _, seq in ipairs(redis.call('SMEMBERS', lk(leaseId))) do
  local c = ck(seq)
  local f = redis.call('HMGET', c, 'state', 'lease_id', 'job_id')
  if f[1] == 'running' and f[2] == leaseId then
    unlease(seq, leaseId)
    redis.call('HSET', c, 'state', 'queued', 'updated_at', fmt(now))
    redis.call('ZADD', READY, seq, seq)
    jd(f[3], 'running', -1); jd(f[3], 'queued', 1); gd('running', -1)
    released = released + 1
  end
end
redis.call('DEL', lk(leaseId))
flush(now)
return released
`;

/**
 * ARGV: jobId, maxFailures. Returns {} or {{collection, total, queued, running, stored, unchanged,
 * dead, discarded, created_at, updated_at, retrying}, {chunk_id, last_error, attempts}...}.
 */
const GET_JOB = `
local k = jk(ARGV[1])
if redis.call('EXISTS', k) == 0 then return {} end
local row = redis.call('HMGET', k, 'collection', 'total', 'queued', 'running', 'stored', 'unchanged', 'dead',
  'discarded', 'created_at', 'updated_at')
-- Chunks waiting for a retry are counted on read, and only in a job that ever scheduled a retry:
-- the scan over its chunks (at most one request's) stays off the path of ordinary status polls.
local retrying = 0
if tonumber(row[3]) > 0 and redis.call('HEXISTS', k, 'retried') == 1 then
  for _, seq in ipairs(redis.call('ZRANGE', k .. ':chunks', 0, -1)) do
    local f = redis.call('HMGET', ck(seq), 'state', 'attempts', 'last_error')
    if f[1] == 'queued' and tonumber(f[2]) > 0 and f[3] ~= false then retrying = retrying + 1 end
  end
end
row[#row + 1] = retrying
local out = {row}
for _, seq in ipairs(redis.call('ZRANGE', k .. ':dead', 0, tonumber(ARGV[2]) - 1)) do
  out[#out + 1] = redis.call('HMGET', ck(seq), 'chunk_id', 'last_error', 'attempts')
end
return out
`;

/**
 * ARGV: jobId, after, limit + 1, state filter ('' for all). Receipts in seq order:
 * {seq, chunk_id, state, attempts, tokens, truncated_tokens, windows, overflow, model, profile,
 * last_error, updated_at}. The "failed" receipt is a queued chunk whose last attempt failed.
 */
const LIST_CHUNKS = `
local jobId = ARGV[1]
local want = tonumber(ARGV[3])
local filter = ARGV[4]
local src = jk(jobId) .. (filter == 'dead' and ':dead' or ':chunks')
local cursor = '(' .. ARGV[2]
local page = 500
local out = {}
while #out < want do
  local seqs = redis.call('ZRANGEBYSCORE', src, cursor, '+inf', 'LIMIT', 0, page)
  for _, seq in ipairs(seqs) do
    local f = redis.call('HMGET', ck(seq), 'chunk_id', 'state', 'attempts', 'tokens', 'truncated_tokens',
      'windows', 'overflow', 'model', 'profile', 'last_error', 'updated_at')
    local retrying = f[2] == 'queued' and tonumber(f[3]) > 0 and f[10] ~= false
    local ok
    if filter == '' then ok = true
    elseif filter == 'failed' then ok = retrying
    elseif filter == 'queued' then ok = f[2] == 'queued' and not retrying
    else ok = f[2] == filter end
    if ok then
      out[#out + 1] = {seq, f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11]}
      if #out >= want then break end
    end
  end
  if #seqs < page then break end
  cursor = '(' .. seqs[#seqs]
end
return out
`;

/** ARGV: jobId or '', after, limit + 1. {seq, job_id, collection, chunk_id, last_error, attempts, dead_at, updated_at}... */
const LIST_DEAD = `
local src = ARGV[1] == '' and DEAD or (jk(ARGV[1]) .. ':dead')
local out = {}
for _, seq in ipairs(redis.call('ZRANGEBYSCORE', src, '(' .. ARGV[2], '+inf', 'LIMIT', 0, tonumber(ARGV[3]))) do
  local f = redis.call('HMGET', ck(seq), 'job_id', 'collection', 'chunk_id', 'last_error', 'attempts', 'dead_at',
    'updated_at')
  out[#out + 1] = {seq, f[1], f[2], f[3], f[4], f[5], f[6], f[7]}
end
return out
`;

/**
 * ARGV: now, mode (all | job | seqs), jobId, seqs... Dead letters back to queued with attempts and
 * stalls reset. One with a newer version of the same chunk queued, running or written stays dead:
 * replaying it would put stale text over the newer one.
 */
const REPLAY = `
local now = now_ms(ARGV[1])
local moved = 0
for _, seq in ipairs(selected()) do
  local c = ck(seq)
  local f = redis.call('HMGET', c, 'state', 'job_id', 'collection', 'chunk_id', 'est_tokens')
  if f[1] == 'dead' then
    local key = kk(f[3], f[4])
    local newer = redis.call('ZRANGEBYSCORE', key .. ':live', '(' .. seq, '+inf', 'LIMIT', 0, 1)
    if #newer == 0 then
      redis.call('HSET', c, 'state', 'queued', 'attempts', '0', 'stalls', '0', 'available_at', fmt(now),
        'updated_at', fmt(now))
      redis.call('HDEL', c, 'last_error', 'dead_at')
      redis.call('ZREM', DEAD, seq)
      redis.call('ZREM', jk(f[2]) .. ':dead', seq)
      redis.call('ZADD', READY, seq, seq)
      redis.call('ZADD', key .. ':inflight', seq, seq)
      redis.call('ZADD', key .. ':live', seq, seq)
      jd(f[2], 'dead', -1); jd(f[2], 'queued', 1)
      gd('dead', -1); gd('pending', 1); gd('pending_tokens', tonumber(f[5]))
      moved = moved + 1
    end
  end
end
flush(now)
return moved
`;

/** ARGV: now, mode (all | job | seqs), jobId, seqs... Dead letters marked discarded (kept as a record). */
const DISCARD = `
local now = now_ms(ARGV[1])
local moved = 0
for _, seq in ipairs(selected()) do
  local c = ck(seq)
  local f = redis.call('HMGET', c, 'state', 'job_id')
  if f[1] == 'dead' then
    redis.call('HSET', c, 'state', 'discarded', 'updated_at', fmt(now))
    redis.call('HDEL', c, 'text', 'payload', 'document_id')
    redis.call('ZREM', DEAD, seq)
    redis.call('ZREM', jk(f[2]) .. ':dead', seq)
    jd(f[2], 'dead', -1); jd(f[2], 'discarded', 1); gd('dead', -1)
    moved = moved + 1
  end
end
flush(now)
return moved
`;

/** ARGV: now. '0' when chunks are ready, the wait for the earliest delayed one, or nil. */
const NEXT_AVAILABLE = `
local now = now_ms(ARGV[1])
if redis.call('ZCARD', READY) > 0 then return '0' end
local first = redis.call('ZRANGE', DELAYED, 0, 0, 'WITHSCORES')
if #first == 0 then return false end
return fmt(math.max(0, tonumber(first[2]) - now))
`;

export const QUEUE_SCRIPTS = {
  ragqEnqueue: ENQUEUE,
  ragqReserve: RESERVE,
  ragqRenew: RENEW,
  ragqHeld: HELD,
  ragqAck: ACK,
  ragqFail: FAIL,
  ragqRelease: RELEASE,
  ragqGetJob: GET_JOB,
  ragqListChunks: LIST_CHUNKS,
  ragqListDead: LIST_DEAD,
  ragqReplay: REPLAY,
  ragqDiscard: DISCARD,
  ragqNextAvailable: NEXT_AVAILABLE,
} as const;

export type QueueScriptName = keyof typeof QUEUE_SCRIPTS;

/** Script source with the shared helpers in front. */
export function scriptSource(name: QueueScriptName): string {
  return PRELUDE + QUEUE_SCRIPTS[name];
}
