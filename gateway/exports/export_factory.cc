#include "exports/export_factory.h"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include <fmt/format.h>

#include "backend/delay_backend.h"
#include "backend/fault_backend.h"
#include "backend/file_backend.h"
#include "backend/memory_backend.h"
#include "backend/read_only_backend.h"
#include "common/size_parse.h"
#include "rbd/image_spec.h"

namespace rbdnbd {
namespace {

// The key=value items of one spec; views into the caller's string.
class SpecKeys {
 public:
  struct Item {
    std::string_view key;
    std::optional<std::string_view> value;  // nullopt: a bare flag ("read-only")
  };

  void Add(Item item) { items_.push_back(item); }
  const Item* Find(std::string_view key) const {
    for (const Item& item : items_) {
      if (item.key == key) return &item;
    }
    return nullptr;
  }
  const std::vector<Item>& items() const { return items_; }

 private:
  std::vector<Item> items_;
};

// Problems are reported as "<key>: <problem>"; ParseExportSpec prefixes the spec.
Result<std::string_view> RequireValue(const SpecKeys& keys, std::string_view key,
                                      std::string_view backend) {
  const SpecKeys::Item* item = keys.Find(key);
  if (item == nullptr) return Err(EINVAL, "{} is required for backend={}", key, backend);
  return *item->value;
}

Result<std::shared_ptr<Backend>> CreateMemory(const SpecKeys& keys, bool /*read_only*/, const ExportContext&) {
  auto text = RequireValue(keys, "size", "memory");
  if (!text) return Unexpected(text.error());
  auto size = ParseSize(*text);
  if (!size) return Err(size.error().code, "size: {}", size.error().message);
  return MemoryBackend::Create(*size);
}

Result<std::shared_ptr<Backend>> CreateFile(const SpecKeys& keys, bool read_only, const ExportContext&) {
  auto path = RequireValue(keys, "path", "file");
  if (!path) return Unexpected(path.error());
  FileBackendOptions options;
  options.path = std::string(*path);
  options.read_only = read_only;
  if (const SpecKeys::Item* direct = keys.Find("direct")) {
    if (*direct->value == "auto") options.direct = FileBackendOptions::Direct::kAuto;
    else if (*direct->value == "on") options.direct = FileBackendOptions::Direct::kOn;
    else if (*direct->value == "off") options.direct = FileBackendOptions::Direct::kOff;
    else return Err(EINVAL, "direct: '{}' is not auto, on or off", *direct->value);
  }
  return FileBackend::Create(options);
}

Result<std::shared_ptr<Backend>> CreateRbd(const SpecKeys& keys, bool read_only, const ExportContext& context) {
  auto text = RequireValue(keys, "image", "rbd");
  if (!text) return Unexpected(text.error());
  auto spec = ParseImageSpec(*text);
  if (!spec) return Err(spec.error().code, "image: {}", spec.error().message);
  if (!context.connect) {
    return Err(EINVAL, "backend=rbd needs a cluster: only `rbd-nbdd serve` (with its Ceph options) serves it");
  }
  auto connection = context.connect();
  if (!connection) return Unexpected(connection.error());
  RbdOpenOptions options = connection->image;
  options.spec = *spec;
  options.read_only = options.read_only || read_only;
  auto backend = RbdBackend::Open(connection->cluster, options);
  if (!backend) return Unexpected(backend.error());
  return std::shared_ptr<Backend>(std::move(*backend));
}

// One row per backend kind. To add one: list its keys, write its Create.
struct BackendKind {
  std::string_view name;
  std::span<const std::string_view> keys;
  Result<std::shared_ptr<Backend>> (*create)(const SpecKeys& keys, bool read_only, const ExportContext& context);
};

constexpr std::string_view kMemoryKeys[] = {"size"};
constexpr std::string_view kFileKeys[] = {"path", "direct"};
constexpr std::string_view kRbdKeys[] = {"image"};
constexpr BackendKind kBackendKinds[] = {
    {"memory", kMemoryKeys, CreateMemory},
    {"file", kFileKeys, CreateFile},
    {"rbd", kRbdKeys, CreateRbd},
};

constexpr std::string_view kCommonKeys[] = {
    "name",        "backend",     "description", "read-only",   "fault-errno",
    "fault-ops",   "fault-rate",  "fault-every", "fault-range", "fault-trigger",
    "delay",       "delay-read",  "delay-write", "delay-other",
};

bool Contains(std::span<const std::string_view> list, std::string_view key) {
  for (std::string_view k : list) {
    if (k == key) return true;
  }
  return false;
}

std::string KindNames() {
  std::string names;
  for (const BackendKind& kind : kBackendKinds) {
    names += (names.empty() ? "" : "|") + std::string(kind.name);
  }
  return names;
}

Result<bool> ParseBool(std::string_view key, std::string_view v) {
  if (v == "true" || v == "on" || v == "1") return true;
  if (v == "false" || v == "off" || v == "0") return false;
  return Err(EINVAL, "{}: '{}' is not true or false", key, v);
}

Result<int> ParseErrno(std::string_view v) {
  if (!v.empty() && std::isdigit(static_cast<unsigned char>(v[0]))) {
    auto n = ParseUint(v, 1, 4095);
    if (!n) return Err(EINVAL, "fault-errno: {}", n.error().message);
    return static_cast<int>(*n);
  }
  std::string upper;
  for (char c : v) upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  for (int e = 1; e < 4096; e++) {
    const char* name = strerrorname_np(e);
    if (name != nullptr && upper == name) return e;
  }
  return Err(EINVAL, "fault-errno: '{}' is not an errno name (EIO, ENOSPC, ...) or number", v);
}

Result<uint32_t> ParseOps(std::string_view v) {
  uint32_t mask = 0;
  while (true) {
    size_t plus = v.find('+');
    std::string_view op = v.substr(0, plus);
    if (op == "read") mask |= IoTypeBit(IoType::kRead);
    else if (op == "write") mask |= IoTypeBit(IoType::kWrite);
    else if (op == "flush") mask |= IoTypeBit(IoType::kFlush);
    else if (op == "trim") mask |= IoTypeBit(IoType::kTrim);
    else if (op == "zero") mask |= IoTypeBit(IoType::kWriteZeroes);
    else if (op == "cache") mask |= IoTypeBit(IoType::kCache);
    else if (op == "all") mask |= kAllIoTypes;
    else return Err(EINVAL, "fault-ops: unknown operation '{}' (read|write|flush|trim|zero|cache|all)", op);
    if (plus == std::string_view::npos) return mask;
    v.remove_prefix(plus + 1);
  }
}

Result<double> ParseRate(std::string_view v) {
  bool percent = !v.empty() && v.back() == '%';
  std::string_view number = percent ? v.substr(0, v.size() - 1) : v;
  double rate = 0;
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), rate);
  if (number.empty() || ec != std::errc() || ptr != number.data() + number.size()) {
    return Err(EINVAL, "fault-rate: '{}' is not a number (0.01 or 1%)", v);
  }
  if (percent) rate /= 100;
  if (!(rate >= 0 && rate <= 1)) return Err(EINVAL, "fault-rate: '{}' is not between 0 and 1", v);
  return rate;
}

Result<std::chrono::microseconds> ParseDelay(std::string_view key, std::string_view v) {
  size_t digits = 0;
  while (digits < v.size() && std::isdigit(static_cast<unsigned char>(v[digits]))) digits++;
  std::string_view unit = v.substr(digits);
  uint64_t scale = 0;
  if (unit == "us") scale = 1;
  else if (unit == "ms") scale = 1000;
  else if (unit == "s") scale = 1000000;
  else return Err(EINVAL, "{}: '{}' needs a number and a unit (us, ms or s), e.g. 10ms", key, v);
  constexpr uint64_t kMaxMicros = uint64_t{3600} * 1000000;
  auto n = ParseUint(v.substr(0, digits), 0, kMaxMicros / scale);
  if (!n) return Err(EINVAL, "{}: '{}' is not a delay of at most 1 hour", key, v);
  return std::chrono::microseconds(*n * scale);
}

Result<FaultOptions> ParseFault(const SpecKeys& keys) {
  FaultOptions fault;
  if (const auto* item = keys.Find("fault-errno")) {
    auto e = ParseErrno(*item->value);
    if (!e) return Unexpected(e.error());
    fault.error = *e;
  }
  if (const auto* item = keys.Find("fault-ops")) {
    auto ops = ParseOps(*item->value);
    if (!ops) return Unexpected(ops.error());
    fault.op_mask = *ops;
  }
  if (const auto* item = keys.Find("fault-rate")) {
    auto rate = ParseRate(*item->value);
    if (!rate) return Unexpected(rate.error());
    fault.rate = *rate;
  }
  if (const auto* item = keys.Find("fault-every")) {
    auto every = ParseUint(*item->value, 1, UINT64_MAX);
    if (!every) return Err(EINVAL, "fault-every: {}", every.error().message);
    fault.every = *every;
  }
  if (const auto* item = keys.Find("fault-range")) {
    std::string_view v = *item->value;
    size_t dash = v.find('-');
    auto begin = ParseSize(v.substr(0, dash));
    auto end = dash == std::string_view::npos ? ParseSize("") : ParseSize(v.substr(dash + 1));
    if (!begin || !end) return Err(EINVAL, "fault-range: '{}' is not BEGIN-END (e.g. 0-1M)", v);
    if (*begin >= *end) return Err(EINVAL, "fault-range: '{}' is empty (BEGIN must be below END)", v);
    fault.range_begin = *begin;
    fault.range_end = *end;
  }
  if (const auto* item = keys.Find("fault-trigger")) fault.trigger_file = std::string(*item->value);
  return fault;
}

Result<DelayOptions> ParseDelays(const SpecKeys& keys) {
  DelayOptions delay;
  // `delay` sets all three; the specific keys override it.
  for (std::string_view key : {"delay", "delay-read", "delay-write", "delay-other"}) {
    const auto* item = keys.Find(key);
    if (item == nullptr) continue;
    auto d = ParseDelay(key, *item->value);
    if (!d) return Unexpected(d.error());
    if (key == "delay" || key == "delay-read") delay.read = *d;
    if (key == "delay" || key == "delay-write") delay.write = *d;
    if (key == "delay" || key == "delay-other") delay.other = *d;
  }
  return delay;
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

Result<SpecKeys> SplitSpec(std::string_view spec) {
  SpecKeys keys;
  if (spec.empty()) return Err(EINVAL, "empty spec (expected name=NAME,backend=KIND,...)");
  while (true) {
    size_t comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    size_t eq = item.find('=');
    std::string_view key = item.substr(0, eq);
    if (key.empty()) return Err(EINVAL, "empty key in item '{}'", item);
    if (keys.Find(key) != nullptr) return Err(EINVAL, "{}: given more than once", key);
    if (eq == std::string_view::npos) {
      if (key != "read-only") return Err(EINVAL, "{}: needs a value ({}=...)", key, key);
      keys.Add({key, std::nullopt});
    } else {
      keys.Add({key, item.substr(eq + 1)});
    }
    if (comma == std::string_view::npos) return keys;
    spec.remove_prefix(comma + 1);
  }
}

Result<ExportSpec> Build(const SpecKeys& keys, const ExportContext& context) {

  const auto* kind_item = keys.Find("backend");
  const auto* name_item = keys.Find("name");
  if (name_item == nullptr) return Err(EINVAL, "name is required");
  if (!ValidName(*name_item->value)) {
    return Err(EINVAL, "name: must be 1..255 printable ASCII characters");
  }
  if (kind_item == nullptr) return Err(EINVAL, "backend is required ({})", KindNames());
  const BackendKind* kind = nullptr;
  for (const BackendKind& k : kBackendKinds) {
    if (k.name == *kind_item->value) kind = &k;
  }
  if (kind == nullptr) {
    return Err(EINVAL, "unknown backend '{}' ({})", *kind_item->value, KindNames());
  }

  bool has_fault = false;
  bool has_delay = false;
  bool read_only = false;
  for (const SpecKeys::Item& item : keys.items()) {
    if (Contains(kind->keys, item.key)) continue;
    if (!Contains(kCommonKeys, item.key)) {
      for (const BackendKind& other : kBackendKinds) {
        if (Contains(other.keys, item.key)) {
          return Err(EINVAL, "{}: not valid for backend={} (only for backend={})", item.key,
                     kind->name, other.name);
        }
      }
      return Err(EINVAL, "unknown key '{}'", item.key);
    }
    if (item.value && item.value->empty()) return Err(EINVAL, "{}: empty value", item.key);
    has_fault |= item.key.starts_with("fault-");
    has_delay |= item.key.starts_with("delay");
    if (item.key == "read-only") {
      auto b = item.value ? ParseBool(item.key, *item.value) : Result<bool>(true);
      if (!b) return Unexpected(b.error());
      read_only = *b;
    }
  }
  // Check every cheap value before the backend opens files or allocates.
  Result<FaultOptions> fault = has_fault ? ParseFault(keys) : Result<FaultOptions>(FaultOptions{});
  if (!fault) return Unexpected(fault.error());
  Result<DelayOptions> delay = has_delay ? ParseDelays(keys) : Result<DelayOptions>(DelayOptions{});
  if (!delay) return Unexpected(delay.error());

  auto backend = kind->create(keys, read_only, context);
  if (!backend) return Unexpected(backend.error());
  std::shared_ptr<Backend> chain = *backend;
  if (has_fault) {
    auto wrapped = FaultBackend::Create(chain, *fault);
    if (!wrapped) return Unexpected(wrapped.error());
    chain = *wrapped;
  }
  if (has_delay) {
    auto wrapped = DelayBackend::Create(chain, *delay);
    if (!wrapped) return Unexpected(wrapped.error());
    chain = *wrapped;
  }
  if (read_only && !chain->Capabilities().read_only) chain = ReadOnlyBackend::Wrap(chain);

  ExportSpec out;
  out.name = std::string(*name_item->value);
  const auto* description = keys.Find("description");
  out.description = description ? std::string(*description->value) : chain->Describe();
  out.backend = std::move(chain);
  return out;
}

}  // namespace

Result<ExportSpec> ParseExportSpec(std::string_view spec, const ExportContext& context) {
  auto keys = SplitSpec(spec);
  Result<ExportSpec> parsed = keys ? Build(*keys, context) : Result<ExportSpec>(Unexpected(keys.error()));
  if (!parsed) return WithContext(parsed.error(), fmt::format("export spec '{}'", spec));
  return parsed;
}

Result<ExportSpec> RbdExport(std::string_view image_spec, const ExportContext& context) {
  SpecKeys keys;
  keys.Add({"name", image_spec});
  keys.Add({"backend", "rbd"});
  keys.Add({"image", image_spec});
  return Build(keys, context);
}

}  // namespace rbdnbd
