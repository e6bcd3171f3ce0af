package listener

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"time"
)

// tlsConn is a TLS server connection whose handshake answers a plain HTTP
// request — someone typed http:// for an https:// server — with a 400 that
// says so, instead of closing without a word. fasthttp calls Handshake
// before it reads a request.
type tlsConn struct {
	*tls.Conn
}

// plainHTTPBody is the 400's body, in the shape of every other REST error.
const plainHTTPBody = `{"code":"bad_request","message":"this port speaks HTTPS: use https:// (wss:// for WebSockets)"}`

var plainHTTPResponse = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
	strconv.Itoa(len(plainHTTPBody)) + "\r\n\r\n" + plainHTTPBody

func (c *tlsConn) Handshake() error {
	err := c.Conn.Handshake()
	var re tls.RecordHeaderError
	if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
		answerPlainHTTP(re.Conn)
	}
	return err
}

// looksLikeHTTP reports whether the first five bytes of a connection are
// the start of an HTTP/1 request (the check net/http makes).
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "PATCH", "DELET":
		return true
	}
	return false
}

// answerPlainHTTP writes the 400 on the raw connection, then half-closes
// it and reads what the client still sends (briefly), so that closing does
// not reset the connection before the client has read the answer.
func answerPlainHTTP(nc net.Conn) {
	_ = nc.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(nc, plainHTTPResponse); err != nil {
		return
	}
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(nc, 64<<10))
}
