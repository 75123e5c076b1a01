#include "process/wsgi_content.h"

namespace portico::process {

// A wsgi_app location's content: the app's handler, an upstream (its answers are its own).
class WsgiContentModule::Forwarder : public pipeline::ContentHandler {
 public:
  explicit Forwarder(const config::WsgiSpec& spec) : spec_(spec) {}
  void handle(http::Exchange& exchange) override { target_->handle(exchange); }
  // The app may read the body, and a body is kept for it even before it is resolved.
  bool readsBody() const override { return true; }
  bool upstream() const override { return true; }

  const config::WsgiSpec& spec() const { return spec_; }
  void setTarget(http::Handler* target) { target_ = target; }

 private:
  const config::WsgiSpec& spec_;
  http::Handler* target_ = nullptr;
};

bool WsgiContentModule::claims(const config::LocationSettings& settings) const {
  return settings.wsgi.has_value();
}

std::unique_ptr<pipeline::ContentHandler> WsgiContentModule::create(
    const config::LocationSettings& settings, std::string&) {
  auto forwarder = std::make_unique<Forwarder>(*settings.wsgi);
  made_.push_back(forwarder.get());
  return forwarder;
}

bool WsgiContentModule::resolve(python::WsgiRuntime* runtime, std::string& error) {
  for (Forwarder* forwarder : made_) {
    http::Handler* target = runtime ? runtime->handlerFor(forwarder->spec()) : nullptr;
    if (!target) {
      error = "wsgi_app \"" + forwarder->spec().app + "\" is not loaded";
      return false;
    }
    forwarder->setTarget(target);
  }
  return true;
}

}  // namespace portico::process
