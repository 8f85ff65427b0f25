"""The operator console: a web page the daemon serves, with live view, a focus aid, the capture buttons and the
roll as positives. The camera stays with the camera thread; the console only reads what it publishes and puts
the operator's requests on the same hub as the footswitch and the control socket."""
