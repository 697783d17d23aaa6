package castore.s3;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import software.amazon.awssdk.http.AbortableInputStream;
import software.amazon.awssdk.http.ExecutableHttpRequest;
import software.amazon.awssdk.http.HttpExecuteRequest;
import software.amazon.awssdk.http.HttpExecuteResponse;
import software.amazon.awssdk.http.SdkHttpClient;
import software.amazon.awssdk.http.SdkHttpResponse;

/**
 * An S3 that lives in the client's own memory, for {@link S3WarmUp}: the SDK's HTTP client SPI
 * answering path-style object GET, HEAD, PUT (with If-None-Match and If-Match) and DELETE, as
 * S3 answers them, without a socket. Nothing else (listings, multipart) is served.
 */
final class InMemoryS3Http implements SdkHttpClient {
    private record StoredObject(byte[] bytes, String etag) { }

    private final Map<String, StoredObject> objects = new ConcurrentHashMap<>();
    private final AtomicLong versions = new AtomicLong();
    private final AtomicLong gets = new AtomicLong();

    /** Successful object GETs so far. */
    long gets() {
        return gets.get();
    }

    @Override
    public ExecutableHttpRequest prepareRequest(HttpExecuteRequest request) {
        return new ExecutableHttpRequest() {
            @Override
            public HttpExecuteResponse call() throws IOException {
                return answer(request);
            }

            @Override
            public void abort() {
                // answers are immediate: nothing to abort
            }
        };
    }

    private HttpExecuteResponse answer(HttpExecuteRequest request) throws IOException {
        var http = request.httpRequest();
        String key = http.encodedPath();
        StoredObject current = objects.get(key);
        return switch (http.method()) {
            case GET -> {
                if (current == null) {
                    yield error(404, "NoSuchKey");
                }
                gets.incrementAndGet();
                yield object(200, current, true);
            }
            case HEAD -> current == null ? response(404, null, null, false) : object(200, current, false);
            case PUT -> {
                byte[] body;
                try (InputStream in = request.contentStreamProvider().orElseThrow().newStream()) {
                    body = in.readAllBytes();
                }
                if (http.firstMatchingHeader("x-amz-content-sha256").orElse("").startsWith("STREAMING-")) {
                    body = decodeAwsChunked(body);
                }
                String ifNoneMatch = http.firstMatchingHeader("If-None-Match").orElse(null);
                String ifMatch = http.firstMatchingHeader("If-Match").orElse(null);
                if ("*".equals(ifNoneMatch) && current != null || ifMatch != null && (current == null || !ifMatch.equals(current.etag()))) {
                    yield error(412, "PreconditionFailed");
                }
                var stored = new StoredObject(body, "\"v" + versions.incrementAndGet() + "\"");
                objects.put(key, stored);
                yield response(200, null, stored.etag(), false);
            }
            case DELETE -> {
                objects.remove(key);
                yield response(204, null, null, false);
            }
            default -> error(501, "NotImplemented");
        };
    }

    /**
     * The payload of a body the SDK sent aws-chunked (as it does over plain HTTP): chunks of
     * {@code HEX-SIZE;chunk-signature=...\r\nDATA\r\n}, ending with a chunk of size 0.
     */
    static byte[] decodeAwsChunked(byte[] body) throws IOException {
        var out = new ByteArrayOutputStream(body.length);
        int at = 0;
        while (true) {
            int lineEnd = indexOfCrLf(body, at);
            int sizeEnd = at;
            while (sizeEnd < lineEnd && body[sizeEnd] != ';') {
                sizeEnd++;
            }
            int size;
            try {
                size = Integer.parseInt(new String(body, at, sizeEnd - at, StandardCharsets.US_ASCII), 16);
            } catch (NumberFormatException e) {
                throw new IOException("aws-chunked body: bad chunk size at byte " + at);
            }
            at = lineEnd + 2;
            if (size == 0) {
                return out.toByteArray();
            }
            if (size < 0 || at + size + 2 > body.length) {
                throw new IOException("aws-chunked body: chunk of " + size + " bytes runs past the end");
            }
            out.write(body, at, size);
            at += size + 2;
        }
    }

    private static int indexOfCrLf(byte[] body, int from) throws IOException {
        for (int i = from; i + 1 < body.length; i++) {
            if (body[i] == '\r' && body[i + 1] == '\n') {
                return i;
            }
        }
        throw new IOException("aws-chunked body: no line end after byte " + from);
    }

    private static HttpExecuteResponse object(int status, StoredObject object, boolean withBody) {
        return response(status, withBody ? object.bytes() : null, object.etag(), false, object.bytes().length);
    }

    private static HttpExecuteResponse error(int status, String code) {
        byte[] xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code + "</Code><Message>" + code
                + "</Message></Error>").getBytes(StandardCharsets.UTF_8);
        return response(status, xml, null, true);
    }

    private static HttpExecuteResponse response(int status, byte[] body, String etag, boolean xml) {
        return response(status, body, etag, xml, body == null ? 0 : body.length);
    }

    private static HttpExecuteResponse response(int status, byte[] body, String etag, boolean xml, long length) {
        var headers = SdkHttpResponse.builder().statusCode(status).putHeader("Content-Length", Long.toString(length));
        if (etag != null) {
            headers.putHeader("ETag", etag);
        }
        headers.putHeader("Content-Type", xml ? "application/xml" : "application/octet-stream");
        var response = HttpExecuteResponse.builder().response(headers.build());
        if (body != null) {
            response.responseBody(AbortableInputStream.create(new ByteArrayInputStream(body)));
        }
        return response.build();
    }

    @Override
    public String clientName() {
        return "castore-in-memory";
    }

    @Override
    public void close() {
        objects.clear();
    }
}
