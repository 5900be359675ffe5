// StereoSpot's service worker: shows Web Push notifications (job completed or failed).
self.addEventListener('push', (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { title: 'StereoSpot', body: event.data ? event.data.text() : '' }; }
  const title = data.title || 'StereoSpot';
  event.waitUntil(self.registration.showNotification(title, {
    body: data.body || '', icon: '/static/icon.svg', data: { url: data.url || '/' },
  }));
});
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || '/';
  event.waitUntil(self.clients.openWindow(url));
});
