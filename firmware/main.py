# ovpnkx device application: /ovpnkx.json + /client.ovpn -> OpenVPN key exchange.
# Events go to the console as "OVPNKX {json}" lines; see ovpnkx_device/app.py.
import ovpnkx_device.app

ovpnkx_device.app.main()
