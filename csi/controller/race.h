// How a create attempt tells the races of two controllers working on one
// name (two replicas without leader election; journal_record.h) from real
// failures, and how long it waits one out.
//
// Contract: pure except BackOffForRace(), which sleeps the calling thread;
// any thread.
#pragma once

#include <cerrno>
#include <chrono>
#include <thread>

namespace rbdnbd::csi {

// What librbd answers when another client changes an image under a call:
// removed meanwhile (ENOENT, ESTALE: its id went between the lookup and the
// removal), made meanwhile (EEXIST), snapshotted meanwhile (ENOTEMPTY). After
// a takeover these are the race with the attempt taken over, and the answer
// is kAborted ("retry").
inline bool IsRaceErrno(int code) {
  return code == ENOENT || code == ESTALE || code == EEXIST || code == ENOTEMPTY;
}

// A removal that collided with another client's removal of the same image
// (librbd's remove opens the image: each sees the other's watch, EBUSY) or
// lost its id meanwhile (ESTALE): worth trying again shortly.
inline bool IsRemovalRace(int code) { return code == EBUSY || code == ESTALE; }

// Sleeps before try `round` + 1 of such a removal (50 ms, doubling) and says
// whether to try again: 6 tries over ~1.5 s in all.
inline bool BackOffForRace(int round) {
  constexpr int kTries = 6;
  if (round + 1 >= kTries) return false;
  std::this_thread::sleep_for(std::chrono::milliseconds(50) * (1 << round));
  return true;
}

}  // namespace rbdnbd::csi
