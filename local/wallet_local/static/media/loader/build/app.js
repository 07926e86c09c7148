// Stand-in for the provider's loader (local stack only). It reads the options the game page set, records them
// where a test can see them, and fills #game-content the way the real loader mounts a game.
(function () {
  "use strict";
  function start() {
    var options = window.gameLoaderOptions;
    var container = document.getElementById("game-content");
    window.standInLoader = { options: options, flashData: window.prodFlashDataLoaded === true, started: false };
    if (!options || !container) { return; }
    var frame = document.createElement("div");
    frame.className = "stand-in-game";
    // CSSOM styles (allowed by the page's CSP, unlike inline style attributes).
    frame.style.cssText = "color:#fff;font-family:sans-serif;padding:24px;background:#123;min-height:100%;box-sizing:border-box";
    frame.setAttribute("data-game", options.game);
    var title = document.createElement("h1");
    title.textContent = "Stand-in game " + options.game;
    var details = document.createElement("pre");
    details.textContent = JSON.stringify(options, null, 2);
    frame.appendChild(title);
    frame.appendChild(details);
    container.appendChild(frame);
    window.standInLoader.started = true;
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
