import './base.css';
import './compare.css';
import './launch.css';
import './endpoints.css';
import './views.css';
