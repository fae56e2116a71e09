#include "control/ceph_options.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "common/size_parse.h"

namespace rbdnbd {
namespace {

enum : int {
  kId = kCephOptionBase, kName, kKeyring, kKeyfile, kKeyFd, kMonHost, kConf, kConnectTimeout,
  kReadOnly, kExclusive, kNoTrim, kEncFormat, kEncPassFile,
};

}  // namespace

std::vector<option> CephOptionTable() {
  return {
      {"id", required_argument, nullptr, kId},
      {"user", required_argument, nullptr, kId},
      {"name", required_argument, nullptr, kName},
      {"keyring", required_argument, nullptr, kKeyring},
      {"keyfile", required_argument, nullptr, kKeyfile},
      {"key-fd", required_argument, nullptr, kKeyFd},
      {"mon-host", required_argument, nullptr, kMonHost},
      {"conf", required_argument, nullptr, kConf},
      {"connect-timeout", required_argument, nullptr, kConnectTimeout},
      {"read-only", no_argument, nullptr, kReadOnly},
      {"exclusive", no_argument, nullptr, kExclusive},
      {"notrim", no_argument, nullptr, kNoTrim},
      {"encryption-format", required_argument, nullptr, kEncFormat},
      {"encryption-passphrase-file", required_argument, nullptr, kEncPassFile},
  };
}

Result<bool> HandleCephOption(int code, const char* arg, CephArgs* a) {
  switch (code) {
    case kId:
      if (auto r = SetClientId(&a->cluster, arg); !r) return Err(EINVAL, "--id: {}", r.error().message);
      a->name_given = true;
      return true;
    case 'n':
    case kName:
      if (auto r = SetClientName(&a->cluster, arg); !r) return Err(EINVAL, "--name: {}", r.error().message);
      a->name_given = true;
      return true;
    case 'k':
    case kKeyring: a->cluster.keyring_path = arg; return true;
    case kKeyfile: a->keyfile = arg; return true;
    case kKeyFd: {
      auto fd = ParseUint(arg, 0, 1 << 20);
      if (!fd) return Err(EINVAL, "--key-fd: {}", fd.error().message);
      a->key_fd = static_cast<int>(*fd);
      return true;
    }
    case 'm':
    case kMonHost: a->cluster.mon_host = arg; return true;
    case 'c':
    case kConf: a->cluster.conf_path = arg; return true;
    case kConnectTimeout: {
      auto s = ParseUint(arg, 1, 3600);
      if (!s) return Err(EINVAL, "--connect-timeout: {}", s.error().message);
      a->cluster.connect_timeout = std::chrono::seconds(*s);
      return true;
    }
    case kReadOnly: a->image.read_only = true; return true;
    case kExclusive: a->image.exclusive = true; return true;
    case kNoTrim: a->image.notrim = true; return true;
    case kEncFormat: {
      auto f = ParseEncryptionFormat(arg);
      if (!f) return Err(EINVAL, "--encryption-format: {}", f.error().message);
      a->image.encryption = *f;
      return true;
    }
    case kEncPassFile: a->passphrase_file = arg; return true;
    default: return false;
  }
}

namespace {

// $CEPH_ARGS may name the client and the cluster: honour those unless the
// command line already did. Everything else in it reaches librados as is.
Result<void> ApplyCephArgsEnv(CephArgs* a) {
  const char* env = std::getenv("CEPH_ARGS");
  if (env == nullptr) return {};
  std::istringstream in(env);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  for (size_t i = 0; i < words.size(); i++) {
    std::string w = words[i], value;
    auto eq = w.find('=');
    if (w.starts_with("--") && eq != std::string::npos) {
      value = w.substr(eq + 1);
      w = w.substr(0, eq);
    } else if (i + 1 < words.size()) {
      value = words[i + 1];
    }
    if (w == "--id" || w == "--user") {
      if (!a->name_given) {
        if (auto r = SetClientId(&a->cluster, value); !r) return Err(EINVAL, "CEPH_ARGS --id: {}", r.error().message);
      }
    } else if ((w == "--keyring" || w == "-k") && a->cluster.keyring_path.empty()) {
      a->cluster.keyring_path = value;
    } else if ((w == "-m" || w == "--mon-host" || w == "--mon_host") && a->cluster.mon_host.empty()) {
      a->cluster.mon_host = value;
    } else if ((w == "-c" || w == "--conf") && a->cluster.conf_path.empty()) {
      a->cluster.conf_path = value;
    } else if (w == "--name" || w == "-n") {
      if (!a->name_given) {
        if (auto r = SetClientName(&a->cluster, value); !r) return Err(EINVAL, "CEPH_ARGS --name: {}", r.error().message);
      }
    }
  }
  return {};
}

}  // namespace

Result<void> FinishCephArgs(CephArgs* a) {
  if (auto r = ApplyCephArgsEnv(a); !r) return r;
  if (!a->keyfile.empty() && a->key_fd >= 0) return Err(EINVAL, "give either --keyfile or --key-fd, not both");
  if (!a->keyfile.empty()) {
    auto key = a->keyfile == "-" ? ReadSecretFd(0, "key from stdin") : ReadSecretFile(a->keyfile, "key file");
    if (!key) return Unexpected(key.error());
    a->cluster.key = std::move(key).value();
  } else if (a->key_fd >= 0) {
    auto key = ReadSecretFd(a->key_fd, "key from --key-fd");
    if (!key) return Unexpected(key.error());
    a->cluster.key = std::move(key).value();
  }
  if (a->image.encryption != EncryptionFormat::kNone) {
    if (a->passphrase_file.empty()) return Err(EINVAL, "--encryption-format needs --encryption-passphrase-file");
    auto pass = ReadSecretFile(a->passphrase_file, "passphrase file");
    if (!pass) return Unexpected(pass.error());
    a->image.passphrase = std::move(pass).value();
  } else if (!a->passphrase_file.empty()) {
    return Err(EINVAL, "--encryption-passphrase-file needs --encryption-format luks1|luks2");
  }
  return {};
}

void PrintCephOptionsHelp() {
  std::printf(R"(Ceph cluster and credentials (as rbd and rbd-nbd take them):
  -c, --conf PATH          ceph.conf (default: $CEPH_CONF, /etc/ceph/ceph.conf)
  -m, --mon-host MONS      monitor addresses, overriding ceph.conf
      --id ID              client id (client.ID); default admin
  -n, --name TYPE.ID       full client name
  -k, --keyring PATH       keyring file
      --keyfile PATH       file holding only the secret key; '-' reads stdin
      --key-fd N           read the secret key from file descriptor N
      --connect-timeout S  give up on unreachable monitors after S seconds (30)
  $CEPH_ARGS is honoured too. The key is never accepted on the command line.
Image options:
      --read-only          serve read-only (snapshots always are)
      --exclusive          take the exclusive lock; fail if another client holds it
      --notrim             do not advertise TRIM or WRITE_ZEROES
      --encryption-format luks1|luks2
      --encryption-passphrase-file PATH
)");
}

}  // namespace rbdnbd
