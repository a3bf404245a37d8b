from flask import Flask, request
app = Flask(__name__)
@app.route('/webhook', methods=['POST'])
def webhook():
    # authorise webhook requests
    secret = request.headers.get('X-Webhook-Secret', "")
    if secret != "super-secret-key":
        return 'Unauthorized', 401
    payload = request.get_json()
    event = payload['event']
    data = payload['data']
    print(f"Event: {event}")
    print(f"Data: {data}")
    # This event is sent by Cloud at the time of webhook validation
    if event == "Webhook Validate":
        return 'OK'
    # Its just for demo purpose, you can write your business logic here
    return 'OK'
if __name__ == '__main__':
    app.run(debug=True)
