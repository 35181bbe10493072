// Helpers for tests that run the whole server on loopback: a scratch model
// repository written from config texts, a started server on free ports, a
// model's series from /metrics, and a zero-filled FP32 request.
#ifndef CNNSERVE_TESTS_SERVER_TEST_SERVER_H_
#define CNNSERVE_TESTS_SERVER_TEST_SERVER_H_

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <string>

#include "grpc_predict_v2.pb.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/server/http_get.h"

namespace cnnserve::testing {

// <tmp>/cnnserve_<tag>_<pid>/<model>/config.pbtxt for each (model, config).
inline std::filesystem::path WriteRepository(const std::string& tag,
                                             const std::map<std::string, std::string>& configs) {
  const auto root = std::filesystem::temp_directory_path() /
                    ("cnnserve_" + tag + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(root);
  for (const auto& [model, config] : configs) {
    std::filesystem::create_directories(root / model);
    std::ofstream(root / model / "config.pbtxt") << config;
  }
  return root;
}

// The server on 127.0.0.1 with kernel-chosen ports, serving `repository`;
// `customize` may change any other option. Null (and a test failure) if it
// does not start.
template <typename Customize>
server::Server* StartServer(const std::filesystem::path& repository, Customize customize) {
  server::Server::Options options;
  options.model_repository = repository.string();
  options.host = "127.0.0.1";
  options.grpc_port = 0;
  options.http_port = 0;
  customize(options);
  auto s = server::Server::Start(options);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? s->release() : nullptr;
}

// The value of `model`'s series `name` on the server's /metrics; -1 when absent.
inline double ModelMetric(int http_port, const std::string& name, const std::string& model) {
  const std::string body = HttpGet(http_port, "/metrics").body;
  std::smatch m;
  const std::regex re(name + "\\{model=\"" + model + "\"[^}]*\\} ([0-9.e+-]+)");
  return std::regex_search(body, m, re) ? std::stod(m[1]) : -1;
}

// A raw FP32 request of `items` zero images of 3x224x224 for input "input".
inline inference::ModelInferRequest ZeroImagesRequest(const std::string& model, int items) {
  inference::ModelInferRequest r;
  r.set_model_name(model);
  auto* t = r.add_inputs();
  t->set_name("input");
  t->set_datatype("FP32");
  for (int64_t d : {int64_t{items}, int64_t{3}, int64_t{224}, int64_t{224}}) t->add_shape(d);
  r.add_raw_input_contents(std::string(static_cast<size_t>(items) * 3 * 224 * 224 * 4, '\0'));
  return r;
}

}  // namespace cnnserve::testing

#endif  // CNNSERVE_TESTS_SERVER_TEST_SERVER_H_
