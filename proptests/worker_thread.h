// A second thread that runs jobs on request, for harnesses of the
// process-wide allocator that free on "another thread" (c_api_misuse_prop,
// fuzz/c_api_fuzz): persistent, so it keeps its heap between jobs like a
// long-lived thread of a server, and synchronous, so a harness stays
// deterministic. run() returns once the job has run there (the mutex orders
// everything the job did before whatever the caller does next).
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace hpcalloc::proptest {

class WorkerThread {
 public:
  WorkerThread() {
    std::thread([this] { loop(); }).detach();
  }
  // The thread is detached and never stops: harnesses keep one for the
  // whole process (its heap must outlive every test input).
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;

  void run(const std::function<void()>& job) {
    std::unique_lock<std::mutex> lock(mutex_);
    job_ = &job;
    done_ = false;
    wake_.notify_all();
    wake_.wait(lock, [this] { return done_; });
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return job_ != nullptr; });
      const std::function<void()>* job = job_;
      job_ = nullptr;
      lock.unlock();
      (*job)();
      lock.lock();
      done_ = true;
      wake_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  const std::function<void()>* job_ = nullptr;
  bool done_ = false;
};

}  // namespace hpcalloc::proptest
