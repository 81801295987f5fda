-- Redirect load for wrk: each request asks for a code drawn from a file of
-- codes (one a line), uniformly, or with Zipf skew when ZIPF_S > 0, and
-- carries the headers of a real browser or crawler visit.
--
--   CODES=codes.txt ZIPF_S=1.1 wrk -t1 -c64 -d10s -s bench/wrk/redirects.lua http://host:8080
--
-- At the end it prints one line, "WRK_JSON {...}", that the Go drivers parse.

local codes = {}
local zipf_s = tonumber(os.getenv("ZIPF_S") or "0")
-- RANDOM_CODES=1: codes nobody issued, 7 random base62 characters each
-- (the flood a proxy must answer without a database); no file.
local random_codes = os.getenv("RANDOM_CODES") == "1"
local alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
local cdf = nil

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

local function load()
  if random_codes then
    return
  end
  local path = os.getenv("CODES") or "codes.txt"
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
