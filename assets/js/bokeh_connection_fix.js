// GLE Lab: a websocket lost in the middle of a message no longer breaks the reconnection
// (BokehJS 3.9; installed once per page).
//
// A Bokeh message arrives as several websocket frames (header, metadata, content, then the
// binary buffers), put together by the connection's Receiver. BokehJS makes that Receiver
// once per ClientConnection and keeps it across reconnections. When the socket drops
// between two frames of one message (classroom Wi-Fi; likely at 30 messages a second), the
// Receiver is left half-way through that message, and the new socket's first frame, the
// server's ACK, is taken as the rest of it: "First message was not an ACK", and every
// later message is read out of step, so the page never streams again. Each connection
// attempt now starts with an empty Receiver: a new socket begins at a message's start.
(function () {
  if (typeof Bokeh === "undefined" || Bokeh.require == null) return;
  let connection = null, receiver = null;
  try {
    connection = Bokeh.require("client/connection");
    receiver = Bokeh.require("protocol/receiver");
  } catch (e) { return; }
  const proto = connection && connection.ClientConnection && connection.ClientConnection.prototype;
  if (proto == null || receiver == null || typeof receiver.Receiver !== "function" ||
      typeof proto.connect !== "function" || proto.__gle_fresh_receiver) return;
  const connect = proto.connect;
  proto.connect = function () {
    if (this.socket == null) this._receiver = new receiver.Receiver();
    return connect.apply(this, arguments);
  };
  proto.__gle_fresh_receiver = true;
})();
