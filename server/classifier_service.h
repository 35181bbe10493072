// cnnserve.v1.Classifier: encoded images in, top-k classes out, over the
// same repository and batchers as the KServe service. Images are decoded
// and preprocessed on the gRPC thread that received them (outside the
// batch thread, in parallel with compute), per the model's config.
//
// Codes: NOT_FOUND / UNAVAILABLE from the repository, INVALID_ARGUMENT for
// a bad image, more images than max_batch_size (as ModelInfer with too many
// items) or a model that does not take images, RESOURCE_EXHAUSTED for a
// full queue.
#ifndef CNNSERVE_SERVER_CLASSIFIER_SERVICE_H_
#define CNNSERVE_SERVER_CLASSIFIER_SERVICE_H_

#include "cnnserve/v1/classifier.grpc.pb.h"
#include "server/auth.h"
#include "server/drain_gate.h"
#include "server/metrics.h"
#include "server/model_repository.h"

namespace cnnserve::server {

class ClassifierService final : public v1::Classifier::CallbackService {
 public:
  // `repository`, `metrics` and `drain` must outlive the service and its
  // RPCs; once `drain` is closed, Classify is UNAVAILABLE.
  // `auth` (may be null: everyone may call) must outlive the service.
  ClassifierService(const ModelRepository* repository, Metrics* metrics,
                    const AuthPolicy* auth, DrainGate* drain)
      : repository_(repository), metrics_(metrics), auth_(auth), drain_(drain) {}

  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const v1::ClassifyRequest* request,
                                     v1::ClassifyResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* DescribeModel(grpc::CallbackServerContext* context,
                                          const v1::DescribeModelRequest* request,
                                          v1::DescribeModelResponse* response) override;

 private:
  const ModelRepository* repository_;
  Metrics* metrics_;
  const AuthPolicy* auth_;
  DrainGate* drain_;
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_CLASSIFIER_SERVICE_H_
