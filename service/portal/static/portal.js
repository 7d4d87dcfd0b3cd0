// yiyun portal: charts from data attributes (no inline script under the CSP), re-drawn after
// htmx swaps a fragment; a bar with a link opens the drill-down page.
(function () {
  'use strict';

  function draw(root) {
    if (typeof echarts === 'undefined') return;
    root.querySelectorAll('.chart[data-chart]').forEach(function (el) {
      var option = JSON.parse(el.getAttribute('data-chart'));
      var links = el.hasAttribute('data-links') ? JSON.parse(el.getAttribute('data-links')) : null;
      // Tooltips as rich text: the default HTML tooltip carries inline style attributes,
      // which the page's CSP refuses.
      option.tooltip = Object.assign({ trigger: 'axis', renderMode: 'richText' }, option.tooltip || {});
      option.textStyle = Object.assign({ fontFamily: getComputedStyle(document.body).fontFamily }, option.textStyle || {});
      var existing = echarts.getInstanceByDom(el);
      if (existing) existing.dispose();
      var chart = echarts.init(el, null, { renderer: 'canvas' });
      chart.setOption(option);
      if (links) {
        chart.on('click', function (params) {
          var target = links[params.name];
          if (target) window.location.assign(target);
        });
        el.classList.add('clickable');
      }
    });
  }

  document.addEventListener('DOMContentLoaded', function () { draw(document); });
  document.addEventListener('htmx:afterSettle', function (event) { draw(event.target); });
  window.addEventListener('resize', function () {
    if (typeof echarts === 'undefined') return;
    document.querySelectorAll('.chart[data-chart]').forEach(function (el) {
      var chart = echarts.getInstanceByDom(el);
      if (chart) chart.resize();
    });
  });
})();
