/*
 * @jupyterhub-platform/cull-warning: a JupyterLab plugin that warns before the platform's culler
 * stops this server (docs/culler.md, "Warning in JupyterLab").
 *
 * It needs nothing from JupyterLab's shared modules (it only runs the `apputils:notify` and
 * `apputils:dismiss-notification` commands), so it is this one file, written as the module
 * federation container JupyterLab loads prebuilt extensions from, with no build step: JupyterLab
 * calls `init(shareScope)`, then `get("./extension")`, and registers the plugins the factory's
 * module exports as `default`.
 *
 * The server's `jupyterhub-platform/cull-deadline` (jupyterhub_platform.workspace.cull_deadline)
 * answers what the culler says of this server (`cull_at`, `due`, `policy`) and how early to
 * warn (`warn_before`); the page asks it with the server's token, as JupyterLab's own requests
 * do. Anything unexpected (no culler, an error) means no warning and another try later.
 */
(function () {
  "use strict";
  var NAME = "@jupyterhub-platform/cull-warning";
  var RECHECK = 300; // seconds between checks while no warning is near
  var SOON = 5; // seconds: the shortest wait between checks

  function pageConfig() {
    var el = document.getElementById("jupyter-config-data");
    return el ? JSON.parse(el.textContent) : {};
  }

  function duration(seconds) {
    var s = Math.max(0, Math.round(seconds));
    if (s >= 3600) return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
    if (s >= 60) return Math.round(s / 60) + " min";
    return s + " s";
  }

  function message(server, remaining) {
    var name = server.server ? "Your server '" + server.server + "'" : "Your server";
    var when = name + " will be stopped in about " + duration(remaining);
    if (server.due === "max-age") {
      return when + ": it reaches the maximum age of culling policy '" + server.policy +
        "'. Save your work.";
    }
    return when + " if it stays unused (culling policy '" + server.policy +
      "'). Using it keeps it running.";
  }

  function start(app) {
    var config = pageConfig();
    if (!config.hubPrefix) return; // not under JupyterHub
    var url = (config.baseUrl || "/") + "jupyterhub-platform/cull-deadline";
    var headers = { Accept: "application/json" };
    if (config.token) headers.Authorization = "token " + config.token;
    var shown = null; // the open notification's id

    function dismiss() {
      if (shown !== null) {
        app.commands.execute("apputils:dismiss-notification", { id: shown });
        shown = null;
      }
    }

    async function check() {
      var wait = RECHECK;
      try {
        var resp = await fetch(url, { headers: headers, credentials: "same-origin" });
        var data = resp.ok ? await resp.json() : null;
        var mine = data && data.server;
        if (mine && mine.cull_at && data.warn_before > 0) {
          var remaining = (Date.parse(mine.cull_at) - Date.parse(data.now)) / 1000;
          var until = remaining - data.warn_before;
          if (until <= 0) {
            if (shown === null) {
              shown = await app.commands.execute("apputils:notify", {
                message: message(mine, remaining),
                type: "warning",
                options: { autoClose: false }
              });
            }
            wait = Math.min(60, Math.max(remaining / 2, SOON));
          } else {
            dismiss(); // used again: the stop moved away
            wait = Math.min(RECHECK, Math.max(until, SOON));
          }
        } else {
          dismiss();
        }
      } catch (err) {
        console.debug(NAME + ": no culler deadline", err);
      }
      setTimeout(check, wait * 1000);
    }

    app.restored.then(check);
  }

  var plugin = {
    id: NAME + ":plugin",
    description: "Warns before the platform's culler stops this server.",
    autoStart: true,
    activate: start
  };

  var registry = (window._JUPYTERLAB = window._JUPYTERLAB || {});
  registry[NAME] = {
    init: function () {
      return Promise.resolve();
    },
    get: function (module) {
      if (module !== "./extension") {
        return Promise.reject(new Error(NAME + " has no module " + module));
      }
      return Promise.resolve(function () {
        return { __esModule: true, default: [plugin] };
      });
    }
  };
})();
