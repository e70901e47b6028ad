// The sign-up form: four steps on one page, moved between with the History API, so that the
// client reports each step as a page view (single-page-app navigation) and the funnel events
// signup_start → signup_profile → signup_payment → signup_complete, as the Go simulation in
// examples/web-signup does.
(function () {
  "use strict";
  var cfg = window.SIGNUP_CONFIG;
  var params = new URLSearchParams(location.search);
  var steps = [
    { path: "/signup", id: "start", event: "signup_start" },
    { path: "/signup/profile", id: "profile", event: "signup_profile" },
    { path: "/signup/payment", id: "payment", event: "signup_payment" },
    { path: "/signup/done", id: "done", event: "signup_complete" },
  ];

  // An anonymous visitor id for this tab's session; a real app would call track.user with its
  // account id once the visitor has one. The collector stores only a keyed hash of it.
  var visitor = sessionStorage.getItem("visitor");
  if (!visitor) {
    visitor = "visitor-" + (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2));
    sessionStorage.setItem("visitor", visitor);
  }
  window.signupVisitor = visitor;

  window.track.init({
    endpoint: cfg.endpoint,
    service: cfg.service,
    user: visitor,
    location: "locale",
    // ?flush= and ?backoff= (milliseconds) and ?queue= (events) exist for the tests and demos.
    flushInterval: Number(params.get("flush")) || 2000,
    maxBackoff: Number(params.get("backoff")) || 30000,
    maxQueue: Number(params.get("queue")) || 1000,
  });

  var email = "";

  function show(path) {
    var at = 0;
    steps.forEach(function (s, i) {
      var on = s.path === path;
      document.getElementById(s.id).hidden = !on;
      document.querySelectorAll(".steps li")[i].className = on ? "current" : "";
      if (on) at = i;
    });
    var s = steps[at];
    if (s.path !== path) history.replaceState(null, "", s.path);
    document.getElementById("receipt-to").textContent = email;
    window.track.event(s.event, { step: at + 1 });
  }

  function go(path) {
    history.pushState(null, "", path);
    scrollTo(0, 0);
    show(path);
  }

  window.addEventListener("popstate", function () { show(location.pathname); });

  document.getElementById("start-next").addEventListener("click", function () {
    if (!document.getElementById("accept").checked) return;
    go("/signup/profile");
  });
  document.getElementById("profile-next").addEventListener("click", function () {
    email = document.getElementById("email").value;
    go("/signup/payment");
  });

  function chargeCard(number) {
    var digits = number.replace(/\D/g, "");
    if (digits === "4000000000000002") {
      // Uncaught on purpose: the client reports it as an "error" event with its stack trace.
      throw new Error("card declined: " + number + " for " + email);
    }
    return digits.length >= 13;
  }

  document.getElementById("pay").addEventListener("click", function () {
    var err = document.getElementById("payment-error");
    err.hidden = false;
    err.textContent = "Your card was declined.";
    if (chargeCard(document.getElementById("card").value)) {
      err.hidden = true;
      go("/signup/done");
    }
  });
  document.getElementById("send-receipt").addEventListener("click", function () {
    document.getElementById("receipt-sent").hidden = false;
  });

  show(location.pathname);
})();
