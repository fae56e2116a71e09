#include "device/connection_group.h"

#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <unordered_map>

#include <spdlog/spdlog.h>

namespace rbdnbd {

struct ConnectionGroup::Member {
  Id id = 0;
  size_t loop = 0;
  std::unique_ptr<Connection> conn;  // its loop's thread only
  bool close_requested = false;      // under State::mu: closed by the group, not lost
};

struct ConnectionGroup::State {
  std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<Id, std::shared_ptr<Member>> members;  // under mu: the live ones
  Id next_id = 1;
  bool expect_close = false;  // under mu
  LostFn on_lost;
};

ConnectionGroup::ConnectionGroup(LoopPool& loops, LostFn on_lost)
    : loops_(loops), state_(std::make_shared<State>()) {
  state_->on_lost = std::move(on_lost);
}

ConnectionGroup::~ConnectionGroup() {
  if (live() == 0) return;
  ForceClose();
  if (!WaitClosed(std::chrono::seconds(30))) {
    spdlog::critical("{} connection(s) did not close within 30 s; leaking them", live());
  }
}

ConnectionGroup::Id ConnectionGroup::Add(UniqueFd fd, Factory make) {
  auto m = std::make_shared<Member>();
  m->loop = loops_.PickNext();
  EventLoop& loop = loops_.loop(m->loop);
  BufferPool& pool = loops_.pool(m->loop);
  // Shared so that the task stays copyable (std::function) and the fd still
  // closes if the task is dropped without running.
  auto owned = std::make_shared<UniqueFd>(std::move(fd));
  std::lock_guard lock(state_->mu);
  m->id = state_->next_id++;
  state_->members.emplace(m->id, m);
  // Posted under the lock: every command posted later (also under it) runs
  // on this loop after the connection exists.
  loop.Post([state = state_, m, owned, make = std::move(make), &loop, &pool] {
    auto on_closed = [state, m](Connection*) {
      m->conn.reset();  // on its loop, after its last callback (Connection's contract)
      LostFn lost;
      {
        std::lock_guard lock(state->mu);
        state->members.erase(m->id);
        if (!state->expect_close && !m->close_requested) lost = state->on_lost;
      }
      state->cv.notify_all();
      if (lost) lost();
    };
    m->conn = make(loop, pool, std::move(*owned), std::move(on_closed));
    m->conn->Start();
  });
  return m->id;
}

void ConnectionGroup::PostToAll(Command command) {
  std::lock_guard lock(state_->mu);
  state_->expect_close = true;
  for (const auto& [id, m] : state_->members) {
    loops_.loop(m->loop).Post([m = m, command] {
      if (!m->conn) return;
      if (command == Command::kShutdown) {
        m->conn->Shutdown();
      } else {
        m->conn->ForceClose();
      }
    });
  }
}

void ConnectionGroup::Shutdown() { PostToAll(Command::kShutdown); }

void ConnectionGroup::ForceClose() { PostToAll(Command::kForceClose); }

void ConnectionGroup::ForceClose(const std::vector<Id>& ids) {
  std::lock_guard lock(state_->mu);
  for (Id id : ids) {
    auto it = state_->members.find(id);
    if (it == state_->members.end()) continue;  // closed already
    auto m = it->second;
    m->close_requested = true;
    loops_.loop(m->loop).Post([m] {
      if (m->conn) m->conn->ForceClose();
    });
  }
}

void ConnectionGroup::ExpectClose() {
  std::lock_guard lock(state_->mu);
  state_->expect_close = true;
}

bool ConnectionGroup::WaitClosed(std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_->mu);
  return state_->cv.wait_for(lock, timeout, [this] { return state_->members.empty(); });
}

size_t ConnectionGroup::live() const {
  std::lock_guard lock(state_->mu);
  return state_->members.size();
}

Result<void> ConnectionGroup::SetExportSize(uint64_t size, std::chrono::milliseconds timeout) {
  // Shared: after a timeout the posted tasks still run and count down.
  struct Acks {
    std::mutex mu;
    std::condition_variable cv;
    size_t pending = 0;
  };
  auto acks = std::make_shared<Acks>();
  size_t total = 0;
  {
    std::lock_guard lock(state_->mu);
    total = state_->members.size();
    {
      std::lock_guard ack_lock(acks->mu);
      acks->pending = total;
    }
    for (const auto& [id, m] : state_->members) {
      loops_.loop(m->loop).Post([m = m, size, acks] {
        if (m->conn) m->conn->SetExportSize(size);
        {
          std::lock_guard ack_lock(acks->mu);
          acks->pending--;
        }
        acks->cv.notify_all();
      });
    }
  }
  std::unique_lock lock(acks->mu);
  if (!acks->cv.wait_for(lock, timeout, [&] { return acks->pending == 0; })) {
    return Err(ETIMEDOUT, "{} of {} connection(s) did not take the new size ({} bytes) within {} ms",
               acks->pending, total, size, timeout.count());
  }
  return {};
}

}  // namespace rbdnbd
