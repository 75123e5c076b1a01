#include "http/rewrite.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "http/map.h"

namespace portico::http {
namespace {

using config::RewriteStep;
using Action = RewriteResult::Action;

RewriteStep rewriteStep(std::string regex, std::string replacement,
                        RewriteStep::Flag flag = RewriteStep::Flag::kNone) {
  RewriteStep s;
  s.kind = RewriteStep::Kind::kRewrite;
  s.regex = std::move(regex);
  if (!replacement.empty() && replacement.back() == '?') {
    replacement.pop_back();
    s.keepArgs = false;
  }
  s.redirect = replacement.starts_with("http://") || replacement.starts_with("https://") ||
               replacement.starts_with("$scheme");
  s.replacement = std::move(replacement);
  s.flag = flag;
  return s;
}

RewriteStep setStep(std::string variable, std::string value) {
  RewriteStep s;
  s.kind = RewriteStep::Kind::kSet;
  s.variable = std::move(variable);
  s.value = std::move(value);
  return s;
}

RewriteStep ifStep(RewriteStep::Condition c, std::string subject, std::string operand,
                   std::vector<RewriteStep> body, bool caseless = false) {
  RewriteStep s;
  s.kind = RewriteStep::Kind::kIf;
  s.condition = c;
  s.subject = std::move(subject);
  s.operand = std::move(operand);
  s.caseless = caseless;
  s.body = std::move(body);
  return s;
}

RewriteStep returnStep(int code, std::string text) {
  return RewriteStep::returning(config::ReturnSpec{code, std::move(text), true});
}

// A program over one registry and store, run on a URI and args.
struct Runner {
  VariableRegistry registry;
  std::optional<UserVariableStore> store;
  std::optional<RewriteProgram> program;
  RewriteState state;
  Request request;
  bool quoted = false;  // the request's URI held %XX or '+'


  explicit Runner(const std::vector<RewriteStep>& steps, std::vector<std::string> names = {}) {
    for (const std::string& n : names) registry.add(n);
    std::string error;
    program = RewriteProgram::compile(steps, {}, &registry, error);
    EXPECT_TRUE(program) << error;
    store.emplace(registry);
  }
  RewriteResult run(std::string uri, std::string args = "") {
    state = {};
    state.quotedUri = quoted;
    state.uri = std::move(uri);
    state.args = std::move(args);
    VariableContext c;
    c.request = &request;
    c.users = &*store;
    c.warnUninitialized = false;
    return program->run(state, c, false);
  }
};

TEST(Rewrite, ReplacementCapturesAndArgs) {
  Runner r({rewriteStep("^/old/(\\w+)/(\\w+)$", "/new/$2/$1?x=$1")});
  RewriteResult res = r.run("/old/a/b", "k=v");
  EXPECT_EQ(res.action, Action::kDone);  // no flag: the program goes on, and says
  EXPECT_TRUE(r.state.uriChanged);       // the locations are matched again at its end
  EXPECT_EQ(r.state.uri, "/new/b/a");
  EXPECT_EQ(r.state.args, "x=a&k=v");
  EXPECT_TRUE(r.state.uriChanged);
  // No match: nothing changes, the captures are cleared.
  res = r.run("/other", "k=v");
  EXPECT_EQ(res.action, Action::kDone);
  EXPECT_EQ(r.state.uri, "/other");
  EXPECT_FALSE(r.state.uriChanged);
}

TEST(Rewrite, QuestionMarkDropsArgs) {
  Runner r({rewriteStep("^", "/x?")});
  r.run("/a", "k=v");
  EXPECT_EQ(r.state.uri, "/x");
  EXPECT_EQ(r.state.args, "");
  Runner keep({rewriteStep("^", "/y")});
  keep.run("/a", "k=v");
  EXPECT_EQ(keep.state.args, "k=v");
}

TEST(Rewrite, FlagsStopTheProgram) {
  Runner last({rewriteStep("^", "/l", RewriteStep::Flag::kLast), returnStep(200, "never")});
  EXPECT_EQ(last.run("/a").action, Action::kLast);
  Runner brk({rewriteStep("^", "/b", RewriteStep::Flag::kBreak), returnStep(200, "never")});
  EXPECT_EQ(brk.run("/a").action, Action::kBreak);
  EXPECT_EQ(brk.state.uri, "/b");
  EXPECT_FALSE(brk.state.uriChanged);
  RewriteStep br;
  br.kind = RewriteStep::Kind::kBreak;
  Runner plain({rewriteStep("^", "/c"), br, returnStep(200, "never")});
  EXPECT_EQ(plain.run("/a").action, Action::kBreak);
  EXPECT_EQ(plain.state.uri, "/c");
  EXPECT_FALSE(plain.state.uriChanged);  // break cancels the new match
}

TEST(Rewrite, Redirects) {
  Runner temp({rewriteStep("^/(.*)$", "/t/$1", RewriteStep::Flag::kRedirect)});
  RewriteResult res = temp.run("/a", "b=c");
  EXPECT_EQ(res.action, Action::kRedirect);
  EXPECT_EQ(res.status, 302);
  EXPECT_EQ(res.text, "/t/a?b=c");
  Runner perm({rewriteStep("^/(.*)$", "/t/$1?p=1", RewriteStep::Flag::kPermanent)});
  res = perm.run("/a", "b=c");
  EXPECT_EQ(res.status, 301);
  EXPECT_EQ(res.text, "/t/a?p=1&b=c");
  Runner absolute({rewriteStep("^", "http://example.com/?c=d?")});
  res = absolute.run("/a", "a=b");
  EXPECT_EQ(res.action, Action::kRedirect);
  EXPECT_EQ(res.status, 302);
  EXPECT_EQ(res.text, "http://example.com/?c=d");
}

TEST(Rewrite, RedirectUnescapesAsNginx) {
  EXPECT_EQ(unescapeRedirect("http%3A%2F%2Fexample.com%2F%3Ffrom"), "http://example.com/?from");
  EXPECT_EQ(unescapeRedirect("http://example.com%0D%0Asplit"), "http://example.com%0D%0Asplit");
  EXPECT_EQ(unescapeRedirect("/a%41?b%41"), "/aA?b%41");  // nothing after a literal '?'
  EXPECT_EQ(unescapeRedirect("/?from%3Dblah"), "/?from%3Dblah");
  EXPECT_EQ(unescapeRedirect("/x%3Ffrom%3Dblah"), "/x?from%3Dblah");  // a decoded '?' stops too
  EXPECT_EQ(unescapeRedirect("/%zz%4"), "/zz");  // invalid escapes lose their '%' (nginx)
  EXPECT_EQ(escapeArgs("a b+c&d=%"), "a%20b%2Bc%26d=%25");
  EXPECT_EQ(escapeArgs("plain-._~/"), "plain-._~/");
}

TEST(Rewrite, CapturesInNewArgsEscapedForAQuotedUri) {
  Runner r({rewriteStep("^/e/(.*)$", "/x?q=$1")});
  r.quoted = true;
  r.run("/e/a b+c");
  EXPECT_EQ(r.state.uri, "/x");
  EXPECT_EQ(r.state.args, "q=a%20b%2Bc");
  Runner plain({rewriteStep("^/e/(.*)$", "/x?q=$1")});
  plain.run("/e/a b");
  EXPECT_EQ(plain.state.args, "q=a b");
}

TEST(Rewrite, SetAndUserVariables) {
  Runner r({setStep("a", "one"), setStep("b", "$a-$uri"), setStep("a", "two"),
            returnStep(200, "$a $b")},
           {"a", "b"});
  RewriteResult res = r.run("/u");
  EXPECT_EQ(res.action, Action::kReturn);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.text, "two one-/u");
  Runner mixed({setStep("Mixed", "m"), returnStep(200, "$mixed $MIXED")}, {"MiXed"});
  EXPECT_EQ(mixed.run("/").text, "m m");  // variable names are case-insensitive
  Runner args({setStep("args", "x=1"), returnStep(200, "$arg_x")});
  EXPECT_EQ(args.run("/", "x=2").text, "1");
  EXPECT_EQ(args.state.args, "x=1");
}

TEST(Rewrite, UnknownVariableIsACompileError) {
  VariableRegistry registry;
  std::string error;
  RewriteStep step = returnStep(200, "$nope");
  step.source = {"/etc/site.conf", 7};
  EXPECT_FALSE(RewriteProgram::compile({step}, {}, &registry, error));
  EXPECT_EQ(error, "unknown \"nope\" variable in /etc/site.conf:7");
}

TEST(Rewrite, IfConditions) {
  using C = RewriteStep::Condition;
  auto yes = [] { return std::vector<RewriteStep>{returnStep(200, "yes")}; };
  auto verdict = [&](RewriteStep cond, const std::string& args) {
    Runner r({std::move(cond)});
    return r.run("/", args).action == Action::kReturn;
  };
  EXPECT_TRUE(verdict(ifStep(C::kVariable, "$arg_c", "", yes()), "c=1"));
  EXPECT_FALSE(verdict(ifStep(C::kVariable, "$arg_c", "", yes()), "c=0"));
  EXPECT_FALSE(verdict(ifStep(C::kVariable, "$arg_c", "", yes()), ""));
  EXPECT_TRUE(verdict(ifStep(C::kEqual, "$arg_c", "a", yes()), "c=a"));
  EXPECT_FALSE(verdict(ifStep(C::kEqual, "$arg_c", "a", yes()), "c=b"));
  EXPECT_TRUE(verdict(ifStep(C::kNotEqual, "$arg_c", "a", yes()), "c=b"));
  EXPECT_TRUE(verdict(ifStep(C::kMatch, "$arg_c", "foo", yes()), "c=food"));
  EXPECT_FALSE(verdict(ifStep(C::kMatch, "$arg_c", "foo", yes()), "c=FOOD"));
  EXPECT_TRUE(verdict(ifStep(C::kMatch, "$arg_c", "foo", yes(), true), "c=FOOD"));
  EXPECT_TRUE(verdict(ifStep(C::kNotMatch, "$arg_c", "foo", yes()), "c=bar"));
  EXPECT_FALSE(verdict(ifStep(C::kNotMatch, "$arg_c", "foo", yes(), true), "c=FOO"));
}

TEST(Rewrite, IfRegexCapturesReachTheBody) {
  using C = RewriteStep::Condition;
  Runner r({ifStep(C::kMatch, "$arg_c", "^(\\d+)-(\\w+)$", {returnStep(200, "$2/$1")})});
  RewriteResult res = r.run("/", "c=12-ab");
  EXPECT_EQ(res.text, "ab/12");
}

TEST(Rewrite, IfFileTests) {
  using C = RewriteStep::Condition;
  char dir[] = "/tmp/rewrite_test_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string base = dir;
  std::ofstream(base + "/file") << "x";
  ::mkdir((base + "/dir").c_str(), 0755);
  auto holds = [&](C c, const std::string& name) {
    Runner r({ifStep(c, base + "/" + name, "", {returnStep(200, "y")})});
    return r.run("/").action == Action::kReturn;
  };
  EXPECT_TRUE(holds(C::kFile, "file"));
  EXPECT_FALSE(holds(C::kFile, "dir"));
  EXPECT_TRUE(holds(C::kNotFile, "dir"));
  EXPECT_TRUE(holds(C::kDirectory, "dir"));
  EXPECT_FALSE(holds(C::kDirectory, "file"));
  EXPECT_TRUE(holds(C::kExists, "file"));
  EXPECT_TRUE(holds(C::kExists, "dir"));
  EXPECT_FALSE(holds(C::kExists, "none"));
  EXPECT_TRUE(holds(C::kNotExists, "none"));
  EXPECT_TRUE(holds(C::kExecutable, "dir"));
  EXPECT_FALSE(holds(C::kExecutable, "file"));
  EXPECT_TRUE(holds(C::kNotExecutable, "file"));
  std::remove((base + "/file").c_str());
  ::rmdir((base + "/dir").c_str());
  ::rmdir(dir);
}

TEST(Rewrite, IfSwitchesToItsImplicitLocation) {
  using C = RewriteStep::Condition;
  RewriteStep step = ifStep(C::kVariable, "$arg_c", "", {});
  step.ifSettings = std::make_shared<config::LocationSettings>();
  Runner r({step});
  r.run("/", "c=1");
  EXPECT_EQ(r.state.ifSettings, step.ifSettings.get());
  Runner no({step});
  no.run("/", "");
  EXPECT_EQ(no.state.ifSettings, nullptr);
}

TEST(Rewrite, AMatchWithoutGroupsEmptiesTheCaptures) {
  // nginx: r->ncaptures = rc * 2 on every match, so $1 of an earlier regex is gone.
  Runner r({rewriteStep("^/(\\w+)$", "/x/$1"), rewriteStep("^/x", "/y/$1")});
  r.run("/abc");
  EXPECT_EQ(r.state.uri, "/y/");
}

TEST(Rewrite, ZeroLengthUriIsAnError) {
  Runner r({rewriteStep("^/(.*)$", "$1")});
  EXPECT_EQ(r.run("/").action, Action::kError);
}

// ---- map ----

config::MapSpec mapSpec(std::vector<std::pair<std::string, std::string>> entries,
                        bool hostnames = false) {
  config::MapSpec spec;
  spec.sourceValue = "$arg_k";
  spec.variable = "out";
  spec.hostnames = hostnames;
  for (auto& [key, value] : entries) {
    if (key == "default") {
      spec.defaultValue = value;
      continue;
    }
    config::MapSpec::Entry e;
    e.value = value;
    if (key.starts_with("~*")) {
      e.regex = e.caseless = true;
      e.key = key.substr(2);
    } else if (key.starts_with("~")) {
      e.regex = true;
      e.key = key.substr(1);
    } else {
      e.key = key;
    }
    spec.entries.push_back(e);
  }
  return spec;
}

std::string mapValue(const MapVariable& map, const std::string& key) {
  Request request;
  request.query = "k=" + key;
  VariableContext c;
  c.request = &request;
  c.args = request.query;
  return map.evaluate(c);
}

TEST(Map, ExactKeysAreCaseInsensitive) {
  std::string error;
  auto map = MapVariable::compile(mapSpec({{"default", "d"}, {"Foo", "bar"}}), {}, nullptr, error);
  ASSERT_TRUE(map) << error;
  EXPECT_EQ(mapValue(*map, "foo"), "bar");
  EXPECT_EQ(mapValue(*map, "FOO"), "bar");
  EXPECT_EQ(mapValue(*map, "x"), "d");
  auto noDefault = MapVariable::compile(mapSpec({{"a", "b"}}), {}, nullptr, error);
  EXPECT_EQ(mapValue(*noDefault, "x"), "");
}

TEST(Map, HostnamesWildcards) {
  std::string error;
  auto map = MapVariable::compile(
      mapSpec({{"default", "-"}, {"example.com", "exact"}, {"example.*", "tail"},
               {"*.example.com", "head"}, {".dot.example.com", "dot"},
               {"*.a.example.com", "longer"}},
              true),
      {}, nullptr, error);
  ASSERT_TRUE(map) << error;
  EXPECT_EQ(mapValue(*map, "example.com"), "exact");
  EXPECT_EQ(mapValue(*map, "example.com."), "exact");
  EXPECT_EQ(mapValue(*map, "x.example.com"), "head");
  EXPECT_EQ(mapValue(*map, "x.a.example.com"), "longer");
  EXPECT_EQ(mapValue(*map, "dot.example.com"), "dot");
  EXPECT_EQ(mapValue(*map, "w.dot.example.com"), "dot");
  EXPECT_EQ(mapValue(*map, "example.org"), "tail");
  EXPECT_EQ(mapValue(*map, "nexample.com"), "-");
}

TEST(Map, RegexesInOrderWithCaptures) {
  std::string error;
  auto map = MapVariable::compile(
      mapSpec({{"~^(\\w+)-(\\d+)$", "re:$1:$2"}, {"~*^UP", "up"}, {"~^u", "second"},
               {"default", "none"}}),
      {}, nullptr, error);
  ASSERT_TRUE(map) << error;
  EXPECT_EQ(mapValue(*map, "ab-12"), "re:ab:12");
  EXPECT_EQ(mapValue(*map, "up"), "up");
  EXPECT_EQ(mapValue(*map, "q"), "none");
}

TEST(Map, ValuesAreCachedPerRequestUnlessVolatile) {
  // A map of $uri read before and after the URI changes: cached, as nginx's r->variables.
  for (bool isVolatile : {false, true}) {
    config::MapSpec spec;
    spec.sourceValue = "$uri";
    spec.variable = "m";
    spec.isVolatile = isVolatile;
    spec.defaultValue = "$uri";
    VariableRegistry registry;
    std::vector<std::unique_ptr<VariableProducer>> maps;
    config::HttpSite site;
    site.maps.push_back(spec);
    std::string error;
    ASSERT_TRUE(buildUserVariables(site, {}, registry, maps, error)) << error;
    UserVariableStore store(registry);
    std::string templateError;
    auto t = Template::compile("$m", templateError, {}, &registry);
    ASSERT_TRUE(t) << templateError;
    VariableContext c;
    c.users = &store;
    c.uri = "/first";
    EXPECT_EQ(t->expand(c), "/first");
    c.uri = "/second";
    EXPECT_EQ(t->expand(c), isVolatile ? "/second" : "/first");
  }
}

TEST(UserVariables, BuiltinNamesCannotBeRedefined) {
  config::HttpSite site;
  config::MapSpec spec;
  spec.sourceValue = "$args";
  spec.variable = "uri";
  spec.source = {"/etc/site.conf", 3};
  site.maps.push_back(spec);
  VariableRegistry registry;
  std::vector<std::unique_ptr<VariableProducer>> maps;
  std::string error;
  EXPECT_FALSE(buildUserVariables(site, {}, registry, maps, error));
  EXPECT_EQ(error, "the duplicate \"uri\" variable in /etc/site.conf:3");
  EXPECT_TRUE(Template::isBuiltin("uri"));
  EXPECT_TRUE(Template::isBuiltin("args"));
  EXPECT_FALSE(Template::isBuiltin("http_host"));
  EXPECT_FALSE(Template::isBuiltin("mine"));
}

TEST(UserVariables, AMapCycleIsNotFound) {
  config::HttpSite site;
  config::MapSpec a;
  a.sourceValue = "$b";
  a.variable = "a";
  a.defaultValue = "[$b]";
  config::MapSpec b;
  b.sourceValue = "$a";
  b.variable = "b";
  b.defaultValue = "($a)";
  site.maps = {a, b};
  VariableRegistry registry;
  std::vector<std::unique_ptr<VariableProducer>> maps;
  std::string error;
  ASSERT_TRUE(buildUserVariables(site, {}, registry, maps, error)) << error;
  UserVariableStore store(registry);
  VariableContext c;
  c.users = &store;
  std::string templateError;
  auto t = Template::compile("$a", templateError, {}, &registry);
  ASSERT_TRUE(t);
  // Ends (the depth limit) instead of recursing forever.
  EXPECT_FALSE(t->expand(c).empty());
}

}  // namespace
}  // namespace portico::http
