-- Redirect load for wrk: each request asks for a code drawn from a file of
-- codes (one a line), uniformly, or with Zipf skew when ZIPF_S > 0, and
-- carries the headers of a real browser or crawler visit.
--
--   CODES=codes.txt ZIPF_S=1.1 wrk -t1 -c64 -d10s -s bench/wrk/redirects.lua http://host:8080
--
-- CODES_FIXED=1 says every line of CODES has the same length (a code has
-- 7 characters): the file is then held as one string and a Zipf rank is
-- drawn by rejection-inversion (Hoermann and Derflinger, as Go's
-- math/rand.Zipf; ZIPF_S must then be above 1), with no table per code.
-- 10 M codes load in a moment that way; the tables take a minute and
-- 700 MB.
--
-- At the end it prints one line, "WRK_JSON {...}", that the Go drivers parse.

local codes = {}
local zipf_s = tonumber(os.getenv("ZIPF_S") or "0")
-- RANDOM_CODES=1: codes nobody issued, 7 random base62 characters each
-- (the flood a proxy must answer without a database); no file.
local random_codes = os.getenv("RANDOM_CODES") == "1"
local alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
local cdf = nil
local fixed = os.getenv("CODES_FIXED") == "1"
local blob, width, count = nil, 0, 0 -- CODES_FIXED: the file, its line length, its lines
local zipf_rank = nil -- CODES_FIXED with ZIPF_S: draws a rank, 1..count

local agents = {
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
  "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
  "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
  "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
  "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
  "curl/8.5.0",
}
local referrers = {
  "https://www.google.com/", "https://t.co/", "https://news.ycombinator.com/",
  "https://www.facebook.com/", "https://www.reddit.com/r/golang/", "",
  "https://mail.google.com/", "https://www.linkedin.com/feed/", "", "https://duckduckgo.com/",
}
local languages = {
  "en-US,en;q=0.9", "de-CH,de;q=0.9,en;q=0.8", "fr-FR,fr;q=0.9", "ja-JP,ja;q=0.9,en;q=0.5",
  "es-ES,es;q=0.9", "pt-BR,pt;q=0.9,en;q=0.7", "", "zh-CN,zh;q=0.9", "en-GB,en;q=0.8", "nl-NL,nl;q=0.9",
}

-- rejection_inversion returns a function drawing ranks 1..n with
-- probability r^-q / H(n, q), q > 1: Go's math/rand.Zipf with v = 1.
local function rejection_inversion(q, n)
  local omq = 1 - q
  local omqinv = 1 / omq
  local function h(x) return math.exp(omq * math.log(1 + x)) * omqinv end
  local function hinv(x) return math.exp(omqinv * math.log(omq * x)) - 1 end
  local imax = n - 1
  local hxm = h(imax + 0.5)
  local hx0mhxm = h(0.5) - 1 - hxm
  local s = 1 - hinv(h(1.5) - math.exp(-q * math.log(2)))
  return function()
    while true do
      local ur = hxm + math.random() * hx0mhxm
      local x = hinv(ur)
      local k = math.floor(x + 0.5)
      if k >= 0 and k <= imax and (k - x <= s or ur >= h(k + 0.5) - math.exp(-math.log(k + 1) * q)) then
        return k + 1
      end
    end
  end
end

local function load_fixed(path)
  local f = assert(io.open(path, "rb"))
  blob = f:read("*a")
  f:close()
  local nl = blob:find("\n", 1, true)
  if nl == nil or nl < 2 then
    error("no codes in " .. path)
  end
  width, count = nl, #blob / nl
  -- Every line ends where a fixed width says it should: a shorter or
  -- longer one would shift every code after it.
  if #blob % width ~= 0 or blob:sub(-1) ~= "\n" then
    error(path .. ": lines of unequal length under CODES_FIXED")
  end
  for i = 1, count do
    if blob:byte(i * width) ~= 10 then
      error(path .. ": lines of unequal length under CODES_FIXED")
    end
  end
  if zipf_s > 0 then
    if zipf_s <= 1 then
      error("CODES_FIXED draws Zipf ranks only with ZIPF_S above 1")
    end
    zipf_rank = rejection_inversion(zipf_s, count)
  end
end

local function load()
  if random_codes then
    return
  end
  local path = os.getenv("CODES") or "codes.txt"
  if fixed then
    return load_fixed(path)
  end
  for line in io.lines(path) do
    codes[#codes + 1] = line
  end
  if #codes == 0 then
    error("no codes in " .. path)
  end
  if zipf_s > 0 then
    -- Cumulative weights of ranks 1..n, for inverse-CDF sampling.
    cdf = {}
    local sum = 0
    for i = 1, #codes do
      sum = sum + 1 / (i ^ zipf_s)
      cdf[i] = sum
    end
    for i = 1, #codes do
      cdf[i] = cdf[i] / sum
    end
  end
end

local function pick()
  if random_codes then
    local c = {}
    for k = 1, 7 do
      local j = math.random(#alphabet)
      c[k] = alphabet:sub(j, j)
    end
    return table.concat(c)
  end
  if fixed then
    local r = zipf_rank and zipf_rank() or math.random(count)
    local at = (r - 1) * width
    return blob:sub(at + 1, at + width - 1)
  end
  if cdf == nil then
    return codes[math.random(#codes)]
  end
  local u, lo, hi = math.random(), 1, #cdf
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return codes[lo]
end

function init(args)
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
  load()
end

function request()
  local i = math.random(#agents)
  local headers = {
    ["User-Agent"] = agents[i],
    ["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ["Accept-Language"] = languages[math.random(#languages)],
    ["Accept-Encoding"] = "gzip, deflate, br",
  }
  local ref = referrers[math.random(#referrers)]
  if ref ~= "" then
    headers["Referer"] = ref
  end
  return wrk.format("GET", "/" .. pick(), headers)
end

function done(summary, latency, requests)
  local s = summary
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d,' ..
    '"lat_mean_us":%.1f,"lat_p50_us":%d,"lat_p90_us":%d,"lat_p99_us":%d,"lat_p999_us":%d,"lat_max_us":%d}\n',
    s.requests, s.duration, s.bytes, s.errors.connect, s.errors.read, s.errors.write, s.errors.status, s.errors.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
end
