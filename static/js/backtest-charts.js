/* Backtest charts: K-lines with entry/exit markers, equity and drawdown (lightweight-charts 4).
 *
 * Reads the JSON payload from <script id="bt-chart-data"> and draws into #bt-kline,
 * #bt-equity and #bt-drawdown when present. Runs on page load and again when htmx swaps in
 * the results section after a live run finishes. The K-line chart opens on the most recent
 * bars, where candles and markers are legible (scroll or zoom for the rest); equity and
 * drawdown show the whole run and share one time axis.
 */
(function () {
  "use strict";

  function palette() {
    var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
    return dark
      ? { text: "#c2c7d0", grid: "rgba(255,255,255,0.06)", border: "rgba(255,255,255,0.15)" }
      : { text: "#4b5563", grid: "rgba(0,0,0,0.05)", border: "rgba(0,0,0,0.15)" };
  }

  var RECENT_BARS = 360;

  function baseOptions(element, colors, fitAll) {
    return {
      width: element.clientWidth,
      height: element.clientHeight,
      layout: { background: { type: "solid", color: "transparent" }, textColor: colors.text, fontSize: 11 },
      grid: { vertLines: { color: colors.grid }, horzLines: { color: colors.grid } },
      rightPriceScale: { borderColor: colors.border },
      timeScale: {
        borderColor: colors.border, timeVisible: true, secondsVisible: false,
        // A whole year of hourly points must fit in the width for fitContent().
        minBarSpacing: fitAll ? 0.001 : 0.5,
      },
      crosshair: { mode: 0 },
      handleScroll: true,
      handleScale: true,
    };
  }

  function linkTimeScales(charts) {
    var syncing = false;
    charts.forEach(function (source) {
      source.timeScale().subscribeVisibleTimeRangeChange(function (range) {
        if (syncing || !range) return;
        syncing = true;
        charts.forEach(function (target) {
          if (target !== source) {
            try { target.timeScale().setVisibleRange(range); } catch (e) { /* empty chart */ }
          }
        });
        syncing = false;
      });
    });
  }

  function draw(root) {
    var payloadNode = root.querySelector ? root.querySelector("#bt-chart-data") : null;
    if (!payloadNode && root.id === "bt-chart-data") payloadNode = root;
    if (!payloadNode || payloadNode.dataset.drawn) return;
    if (!window.LightweightCharts) return;
    payloadNode.dataset.drawn = "1";
    var data = JSON.parse(payloadNode.textContent);
    var colors = palette();
    var charts = [];
    var curves = [];

    var kline = document.getElementById("bt-kline");
    if (kline && data.candles) {
      var priceChart = LightweightCharts.createChart(kline, baseOptions(kline, colors, false));
      var candles = priceChart.addCandlestickSeries({
        upColor: "#16a34a", downColor: "#dc2626", borderVisible: false,
        wickUpColor: "#16a34a", wickDownColor: "#dc2626",
      });
      candles.setData(data.candles);
      candles.setMarkers(data.markers || []);
      var bars = data.candles.length;
      if (bars > RECENT_BARS) {
        priceChart.timeScale().setVisibleLogicalRange({ from: bars - RECENT_BARS, to: bars + 3 });
      } else {
        priceChart.timeScale().fitContent();
      }
      charts.push(priceChart);
      kline.dataset.markers = String((data.markers || []).length);
    }

    var equityNode = document.getElementById("bt-equity");
    if (equityNode && data.equity) {
      var equityChart = LightweightCharts.createChart(equityNode, baseOptions(equityNode, colors, true));
      var equity = equityChart.addAreaSeries({
        lineColor: "#2563eb", topColor: "rgba(37,99,235,0.28)", bottomColor: "rgba(37,99,235,0.02)",
        lineWidth: 2, priceFormat: { type: "price", precision: 2, minMove: 0.01 },
      });
      equity.setData(data.equity);
      equityChart.timeScale().fitContent();
      charts.push(equityChart);
      curves.push(equityChart);
    }

    var drawdownNode = document.getElementById("bt-drawdown");
    if (drawdownNode && data.drawdown) {
      var ddChart = LightweightCharts.createChart(drawdownNode, baseOptions(drawdownNode, colors, true));
      var drawdown = ddChart.addAreaSeries({
        lineColor: "#dc2626", topColor: "rgba(220,38,38,0.02)", bottomColor: "rgba(220,38,38,0.3)",
        lineWidth: 1, invertFilledArea: true,
        priceFormat: { type: "custom", formatter: function (v) { return v.toFixed(1) + " %"; } },
      });
      drawdown.setData(data.drawdown);
      ddChart.timeScale().fitContent();
      charts.push(ddChart);
      curves.push(ddChart);
    }

    linkTimeScales(curves);
    window.addEventListener("resize", function () {
      charts.forEach(function (chart) {
        var node = chart.chartElement().parentElement;
        chart.applyOptions({ width: node.clientWidth });
      });
    });
    document.body.dataset.chartsReady = String(charts.length);
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:load", function (event) { draw(event.detail.elt); });
  if (document.readyState !== "loading") draw(document);
})();
